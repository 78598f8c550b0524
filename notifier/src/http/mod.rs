//! The webhook routes, behind the `webhooks:write` scope, with `/health`, `/ready`, `/metrics`
//! and `/openapi.json` open beside them.

mod error;
mod extract;
mod openapi;
mod registration;
mod webhooks;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use service_kit::auth::{require_scope, Verifier, WEBHOOKS_WRITE};
use service_kit::metrics::Registry;
use sqlx::PgPool;

pub use error::ApiError;

use crate::ssrf::Guard;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub pool: PgPool,
    /// Checks the bearer token of every webhook route.
    pub verifier: Verifier,
    /// Refuses internal webhook URLs at registration.
    pub guard: Guard,
    /// Webhooks one user may have at once (`WEBHOOKS_PER_USER`).
    pub webhooks_per_user: u32,
    pub metrics: Registry,
}

pub fn router(context: ApiContext) -> Router {
    let metrics = context.metrics.scrape();
    let webhooks = webhooks::router().route_layer(require_scope(context.verifier.clone(), WEBHOOKS_WRITE));
    let routes = Router::new()
        .merge(webhooks)
        .route("/health", get(service_kit::health::live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(service_kit::openapi::serve(&openapi::document())));
    service_kit::server::with_problem_answers(routes).with_state(context)
}

async fn ready(State(context): State<ApiContext>) -> Response {
    let database = service_kit::health::database_check(&context.pool).await;
    service_kit::health::ready(&[("database", database)])
}
