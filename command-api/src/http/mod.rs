//! The HTTP edge: each resource a module with its own `router()`, merged here around one
//! [`ApiContext`].

mod error;
pub(crate) mod extract;
mod orders;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use service_kit::metrics::Registry;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub(crate) use extract::BODY_LIMIT;

use crate::bus::CommandBus;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub bus: CommandBus,
    /// True while every partition this instance owns has its state restored.
    pub decider_ready: Arc<AtomicBool>,
    pub metrics: Registry,
}

/// The whole API.
pub fn router(context: ApiContext) -> Router {
    Router::new()
        .merge(orders::router())
        .route("/health", get(service_kit::health::live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(service_kit::problem::not_found)
        .layer(axum::middleware::from_fn(service_kit::problem::log_server_errors))
        .layer(TraceLayer::new_for_http().on_failure(()))
        .with_state(context)
}

async fn ready(State(context): State<ApiContext>) -> Response {
    let kafka = if context.bus.is_listening() {
        Ok(())
    } else {
        Err("not reading outcomes from Kafka".to_owned())
    };
    let decider = if context.decider_ready.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err("decider has not restored its partitions".to_owned())
    };
    service_kit::health::ready(&[("kafka", kafka), ("decider", decider)])
}

async fn metrics(State(context): State<ApiContext>) -> String {
    context.metrics.render()
}
