//! The query routes, each resource a module with its own `router()`, merged here.

mod consistency;
mod error;
mod openapi;
mod orders;
mod page;
mod products;
mod purchases;
mod reader;
mod track_users;

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use service_kit::auth::{require_any_scope, require_scope, Verifier, CATALOG_READ, CATALOG_WRITE, READ, READ_ALL};
use service_kit::metrics::Registry;
use sqlx::PgPool;

use crate::console::{self, Console};

pub use error::ApiError;
pub(crate) use orders::HistoryEvent;
pub(crate) use page::parse_uuid;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub pool: PgPool,
    /// The operator console's state, served beside the queries.
    pub console: Console,
    pub consistency_wait: Duration,
    /// Checks the bearer token of every query.
    pub verifier: Verifier,
    pub metrics: Registry,
}

/// Who may read orders and purchases: a user (`read`, its own only) or staff (`read:all`).
const READERS: &[&str] = &[READ, READ_ALL];

/// Who may read the catalog: every reader, and whoever reads or keeps the catalog. It is not
/// per-user data, so every one of them reads all of it.
const CATALOG_READERS: &[&str] = &[READ, READ_ALL, CATALOG_READ, CATALOG_WRITE];

pub fn router(context: ApiContext) -> Router {
    // Orders and purchases are read by users (their own) and staff; the catalog by them and by
    // whoever reads or keeps it; `track_user` counts orders across users, so it is staff's only.
    // Health, readiness and metrics stay open.
    let own = Router::new()
        .merge(orders::router())
        .merge(purchases::router())
        .route_layer(require_any_scope(context.verifier.clone(), READERS));
    let catalog = products::router().route_layer(require_any_scope(context.verifier.clone(), CATALOG_READERS));
    let staff = track_users::router().route_layer(require_scope(context.verifier.clone(), READ_ALL));
    let console = console::router(context.console.clone(), context.verifier.clone());
    let routes = Router::new()
        .merge(own)
        .merge(console)
        .merge(catalog)
        .merge(staff)
        .route("/health", get(service_kit::health::live))
        .route("/ready", get(ready))
        .route("/metrics", get(context.metrics.scrape()))
        .route("/openapi.json", get(service_kit::openapi::serve(&openapi::document())));
    service_kit::server::with_problem_answers(routes).with_state(context)
}

async fn ready(State(context): State<ApiContext>) -> Response {
    let database = service_kit::health::database_check(&context.pool).await;
    service_kit::health::ready(&[("database", database)])
}
