//! command-api against the real Kafka broker: one binary, one module per concern.

mod authz;
mod catalog;
mod decider;
mod edge;
mod helpers;
mod orders;
mod poison;
mod purchases;
mod replies;
mod restart;
mod settings;
