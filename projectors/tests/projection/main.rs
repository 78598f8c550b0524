//! Projectors against the real broker and database.

mod helpers;
mod restart;
