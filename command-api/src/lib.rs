//! orderstream's command side: the HTTP edge, the exactly-once decider, and the outcome waiter.
//!
//! A request becomes a typed command at the edge ([`http`]), goes to the commands topic, and the
//! edge waits for its verdict on its own partition of the outcomes topic ([`bus`], [`reply`]). The [`decider`] owns command
//! partitions in a consumer group, folds the events of those partitions into state, decides, and
//! writes events, outcomes and consumed offsets in one Kafka transaction.
//!
//! - [`catalog`]: the catalog's names and prices as every edge replica reads them, for orders.
//! - [`config`]: settings from the environment and flags.
//! - [`outcome`]: the verdict message the decider writes and the edge reads.
//! - [`payments`]: the payment gateway (tokenize, charge), its sandbox, card fingerprints.
//! - [`reactor`]: the reactor: requested purchases into gateway verdicts, and the stock
//!   reservation saga between orders and products.
//! - [`reply`]: which outcomes partition each edge reads, and where the decider sends a verdict.
//! - [`startup`]: [`Application`], binding the listener and supervising the Kafka side.

pub mod bus;
pub mod catalog;
pub mod config;
pub mod decider;
pub mod http;
pub mod outcome;
pub mod payments;
pub mod reactor;
pub mod reply;
pub mod startup;

pub use config::Config;
pub use startup::Application;
