//! Projectors against the real broker and database.

mod dead_letters;
mod evolution;
mod group;
mod helpers;
mod products;
mod rebuild;
mod restart;
mod settings;
