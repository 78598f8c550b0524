//! Waiting for a projection to pass a consistency token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use service_kit::extract::InvalidParameter;
use service_kit::ConsistencyToken;
use tokio::time::{sleep, Instant};
use utoipa::IntoParams;

use super::{ApiContext, ApiError};

const HEADER: &str = "x-consistency-token";
const POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// The token of a request, from `?consistency_token=` or `X-Consistency-Token`; absent means
/// "whatever the read model holds now".
#[derive(Debug)]
pub(super) struct Consistency(Option<ConsistencyToken>);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TokenQuery {
    /// The `consistency_token` of an earlier write: the answer waits until the read model has
    /// passed it (or the header `X-Consistency-Token`).
    consistency_token: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Consistency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let from_query = axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|query| query.0.consistency_token);
        let from_header = parts
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(raw) = from_query.or(from_header) else {
            return Ok(Self(None));
        };
        ConsistencyToken::decode(&raw)
            .map(|token| Self(Some(token)))
            .map_err(|err| {
                ApiError::InvalidParameter(InvalidParameter {
                    field: "consistency_token",
                    detail: err.to_string(),
                })
            })
    }
}

impl Consistency {
    /// Returns once `projection`'s checkpoints have reached every position of the token, or
    /// fails after the configured wait.
    #[tracing::instrument(skip_all, fields(projection))]
    pub(super) async fn wait(&self, context: &ApiContext, projection: &'static str) -> Result<(), ApiError> {
        let Some(token) = &self.0 else {
            return Ok(());
        };
        let started = Instant::now();
        let deadline = started + context.consistency_wait;
        let waited = |outcome: &str| {
            context
                .metrics
                .histogram(
                    "orderstream_query_consistency_wait_seconds",
                    &[("projection", projection.to_owned()), ("outcome", outcome.to_owned())],
                    "How long a query waited for its projection to pass its consistency token, by outcome (reached, timeout)",
                )
                .record(started.elapsed());
        };
        loop {
            let checkpoints = read_models::checkpoint::checkpoints(&context.pool, projection).await?;
            let reached = token.positions().iter().all(|(partition, needed)| {
                checkpoints
                    .get(partition)
                    .is_some_and(|next_offset| next_offset >= needed)
            });
            if reached {
                waited("reached");
                return Ok(());
            }
            if Instant::now() >= deadline {
                waited("timeout");
                return Err(ApiError::NotYetConsistent {
                    projection,
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            sleep(POLL).await;
        }
    }
}
