//! Projectors against the real broker and database.

mod evolution;
mod helpers;
mod rebuild;
mod restart;
