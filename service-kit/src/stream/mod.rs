//! What the services' consume loops share, written once.
//!
//! - [`Batching`]: gathering a consumer's records into batches, up to a size or for a linger
//!   time after the first, whichever comes first.
//! - [`Backoff`]: retrying a failed task with exponential backoff and jitter until it succeeds
//!   or the service shuts down.
//! - [`Tasks`]: the background tasks of a service under one [`CancellationToken`]; a panic in
//!   any of them stops the service with an error instead of leaving a dead loop behind.

mod batch;
mod retry;
mod tasks;

pub use batch::Batching;
pub use retry::Backoff;
pub use tasks::{TaskPanicked, Tasks};
pub use tokio_util::sync::CancellationToken;
