//! orderstream's projectors: fold the events topic into PostgreSQL read models, exactly once.
//!
//! Each projection reads the events partitions it owns from their checkpoints, folds a batch of
//! events in memory, and writes the rows and the new checkpoints in one PostgreSQL transaction.
//! Any number of processes share the partitions through one Kafka consumer group per schema,
//! one consumer per process feeding every projection; the checkpoint rows fence a process that
//! lost a partition. A crash anywhere
//! leaves rows and checkpoint consistent; the next owner starts from the checkpoint.
//!
//! - [`cli`]: what `dead-letters` and `rebuild` do at the terminal.
//! - [`config`]: settings and subcommands (`run`, `migrate`, `rebuild`, `status`,
//!   `dead-letters`).
//! - [`db`]: migrations, checkpoints, and the tables each projection owns.
//! - [`projection`]: the read models (`track_user`, `order_status`, `order_history`, `purchases`
//!   with `user_spend`, `products`) and how events change them.
//! - [`runner`]: the consume–fold–commit loop of the projections in their consumer group; it
//!   claims the checkpoint rows of the partitions it is given and seeks to them, and each commit
//!   checks they are still where it left them (when not, it claims and seeks again).
//! - [`dead_letter`]: records a projection cannot apply (undecodable, or refused by PostgreSQL),
//!   set aside with the checkpoint that passes them, listed and retried from the command line.
//! - [`rebuild`]: a projection rebuilt from the start of the log in a sibling schema, then
//!   swapped in with one transaction while the live one keeps running.
//! - [`status`]: checkpoints, lag and rebuilds, for `projectors status`.
//! - [`startup`]: [`Application`], running every projection beside `/health`, `/ready`, `/metrics`.

pub mod cli;
pub mod config;
pub mod db;
pub mod dead_letter;
pub mod projection;
pub mod rebuild;
pub mod runner;
pub mod startup;
pub mod status;

pub use config::Config;
pub use startup::Application;
