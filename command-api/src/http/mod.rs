//! The HTTP edge: each resource a module with its own `router()`, merged here around one
//! [`ApiContext`].

mod command;
mod error;
pub(crate) mod extract;
mod fields;
mod openapi;
mod orders;
mod products;
mod purchases;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use service_kit::auth::Verifier;
use service_kit::metrics::Registry;
use uuid::Uuid;

pub use error::ApiError;
pub(crate) use extract::BODY_LIMIT;

use self::command::Submission;
use crate::bus::{CommandBus, KafkaBus};
use crate::catalog::Catalog;
use crate::outcome::{Verdict, WrittenEvent};
use crate::payments::{Fingerprinter, PaymentGateway};

/// What every handler can reach. The bus is Kafka's in the service, one answering from memory in
/// the handlers' tests.
#[derive(Debug, Clone)]
pub struct ApiContext<B = KafkaBus> {
    pub bus: B,
    /// True while every partition this instance owns has its state restored.
    pub decider_ready: Arc<AtomicBool>,
    pub metrics: Registry,
    pub gateway: Arc<dyn PaymentGateway>,
    pub fingerprints: Fingerprinter,
    /// Checks the bearer token of every command request.
    pub verifier: Verifier,
    /// Prices the items of orders that the catalog sells.
    pub catalog: Arc<dyn Catalog>,
}

/// What an accepted command answers.
#[derive(Debug)]
pub(super) struct Accepted {
    aggregate_id: Uuid,
    events: Vec<WrittenEvent>,
    consistency_token: String,
}

impl<B: CommandBus> ApiContext<B> {
    /// Submits a command and turns a rejection or refusal into its HTTP problem.
    async fn decide(&self, submission: &Submission) -> Result<Accepted, ApiError> {
        let outcome = self
            .bus
            .submit(&submission.envelope, submission.request_digest.as_deref())
            .await?;
        match outcome.verdict {
            Verdict::Rejected { rejection } => Err(rejection.into()),
            Verdict::Refused { refusal } => Err(refusal.into()),
            Verdict::Accepted {
                events,
                consistency_token,
            } => Ok(Accepted {
                aggregate_id: outcome.aggregate_id,
                events,
                consistency_token,
            }),
        }
    }
}

/// The whole API. On command routes the token is checked first (the outer layer), then a keyed
/// request is digested.
pub fn router<B: CommandBus>(context: ApiContext<B>) -> Router {
    let routes = Router::new()
        .merge(orders::router(&context.verifier, &context.fingerprints))
        .merge(purchases::router(&context.verifier, &context.fingerprints))
        .merge(products::router(&context.verifier, &context.fingerprints))
        .route("/health", get(service_kit::health::live))
        .route("/ready", get(ready::<B>))
        .route("/metrics", get(context.metrics.scrape()))
        .route("/openapi.json", get(service_kit::openapi::serve(&openapi::document())));
    service_kit::server::with_problem_answers(routes).with_state(context)
}

async fn ready<B: CommandBus>(State(context): State<ApiContext<B>>) -> Response {
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

#[cfg(test)]
mod tests;
