//! The order and track-user flow end to end: command-api, projectors and query-api on the real
//! broker and database.

mod authz;
mod console;
mod console_failover;
mod edge;
mod helpers;
mod lifecycle;
mod metrics;
mod orders;
mod purchases;
mod text;
mod track_users;
