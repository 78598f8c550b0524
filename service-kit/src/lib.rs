//! What every orderstream service shares.
//!
//! - [`telemetry`]: structured logs through `tracing`, filtered by `RUST_LOG`; traces exported
//!   over OTLP when configured, and the W3C trace context requests and records carry.
//! - [`problem`]: RFC 9457 `application/problem+json` answers.
//! - [`health`]: `/health` (live) and the shape of `/ready` answers.
//! - [`metrics`]: counters, gauges and histograms through the `metrics` facade, each service's
//!   own Prometheus recorder, its `/metrics` text, and the latency of every HTTP request.
//! - [`duration`]: durations in settings, written `250ms` or `5s`, and their deprecated `_MS`
//!   predecessors.
//! - [`database`]: PostgreSQL settings and a pool whose `search_path` is the configured schema.
//! - [`kafka`] (feature `kafka`): topics, client settings and the CloudEvents envelope.
//! - [`testing`] (feature `testing`): per-test topics and schema, a service's settings read
//!   through its own clap arguments, child services, deadlines, and shared fixtures (events,
//!   envelopes, a producer, the example purchase, the no-card-data check).
//! - [`token`]: the consistency token that carries log positions from writes to reads.
//! - [`server`]: every service's `main` (its runtime, telemetry and shutdown, around an
//!   [`server::App`] built from its settings), the listener a service binds when built, and
//!   serving a router on it until a shutdown signal, draining in-flight requests, cutting off
//!   clients slow to send their request head.
//! - [`secret`]: secrets in settings, inline or from a file, never in `Debug` or a log line.
//! - [`stream`]: what consume loops share: batching with a linger time, retries with backoff and
//!   jitter, and background tasks under one shutdown whose panics stop the service.
//! - [`edge`] (feature `edge`): request ids, CORS, per-caller rate limits, load shedding and
//!   request timeouts around an API's router, and the settings the APIs over the read models
//!   share (edge, database, tokens).
//! - [`extract`] (feature `edge`): reading a JSON body, and path and query extractors, whose
//!   failures are problem+json naming what was wrong.
//! - [`auth`] (feature `auth`): bearer-token (JWT) verification, scope-guarded routes answering
//!   401/403 problem+json, and token minting for local use.
//! - [`openapi`] (feature `openapi`): the bearer scheme, the problem schema and problem responses
//!   the APIs' OpenAPI documents share, `/openapi.json`, and (with `testing`) the check that a
//!   document lists every route.

#[cfg(feature = "auth")]
pub mod auth;
pub mod database;
pub mod duration;
#[cfg(feature = "edge")]
pub mod edge;
#[cfg(feature = "edge")]
pub mod extract;
pub mod health;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod problem;
#[cfg(any(test, feature = "testing"))]
pub mod refused;
pub mod secret;
pub mod server;
pub mod stream;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use problem::Problem;
pub use token::ConsistencyToken;
