//! orderstream's webhooks: users register HTTP endpoints, and the notifier posts them signed
//! notifications (Standard Webhooks) when their own orders and purchases change.
//!
//! It only reads the events log and its own tables; it never calls another service. Two loops
//! and an API share the tables:
//!
//! - [`config`]: settings from the environment and flags.
//! - [`http`]: the webhook routes (register, read, delete, list deliveries) and the one error
//!   mapping.
//! - [`notification`]: the supported event names and the public view of each event that is
//!   sent: ids, statuses, amounts and times, never card data.
//! - [`fanout`]: the consumer turning each event into one delivery row per matching webhook, in
//!   one PostgreSQL transaction per batch, Kafka offsets committed after it.
//! - [`dispatch`]: leasing due deliveries, posting them concurrently (bounded in total and per
//!   webhook) and recording each outcome.
//! - [`retry`]: which answers are retried, and the backoff with full jitter between attempts.
//! - [`signature`]: webhook secrets and the `webhook-signature` header.
//! - [`ssrf`]: refusing hosts that are or resolve to loopback, private and other internal
//!   addresses, at registration and again at each delivery.
//! - [`store`]: every SQL statement over `webhooks`, `webhook_deliveries` and `webhook_owners`.
//! - [`startup`]: [`Application`], binding the listener and running the API and both loops.

pub mod config;
pub mod dispatch;
pub mod fanout;
pub mod http;
pub mod notification;
pub mod retry;
pub mod signature;
pub mod ssrf;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Application;
