//! command-api against the real Kafka broker: one binary, one module per concern.

mod authz;
mod helpers;
mod orders;
mod purchases;
mod restart;
