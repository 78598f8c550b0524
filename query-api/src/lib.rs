//! orderstream's read side: queries over the read models the projectors keep.
//!
//! Any query takes a consistency token (query parameter `consistency_token` or header
//! `X-Consistency-Token`) from an earlier write and waits, bounded, until the projection it
//! reads has passed the token's positions: read-your-writes across the asynchronous boundary.
//!
//! - [`config`]: settings from the environment and flags.
//! - [`console`]: the operator console at `/console`, with its live stream of snapshots.
//! - [`http`]: the routes, one module per resource, and the one error mapping.
//! - [`startup`]: [`Application`], binding the listener and serving.

pub mod config;
pub mod console;
pub mod http;
pub mod startup;

pub use config::Config;
pub use startup::Application;
