//! Waiting for a projection to pass a consistency token.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use service_kit::extract::InvalidParameter;
use service_kit::ConsistencyToken;
use tokio::time::{sleep, Instant};
use tracing::debug;
use utoipa::IntoParams;

use super::{ApiContext, ApiError};
use crate::console::Console;

const HEADER: &str = "x-consistency-token";
/// How often a waiting query reads the checkpoints at first, and at the least.
const FIRST_POLL: Duration = Duration::from_millis(5);
const LAST_POLL: Duration = Duration::from_millis(25);
/// How long a wait goes on before it asks whether the log holds the token's positions at all;
/// a write's own read seldom waits this long, so it seldom asks.
const ASK_LOG_AFTER: Duration = Duration::from_millis(100);

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
    /// fails after the configured wait, or at once when the log has not reached the token.
    #[tracing::instrument(skip_all, fields(projection))]
    pub(super) async fn wait(&self, context: &ApiContext, projection: &'static str) -> Result<(), ApiError> {
        let Some(token) = &self.0 else {
            return Ok(());
        };
        let started = Instant::now();
        let waited = |outcome: &str| {
            context
                .metrics
                .histogram(
                    "orderstream_query_consistency_wait_seconds",
                    &[("projection", projection.to_owned()), ("outcome", outcome.to_owned())],
                    "How long a query waited for its projection to pass its consistency token, by outcome (reached, timeout, refused)",
                )
                .record(started.elapsed());
        };
        let deadline = started + context.consistency_wait;
        let reached = tokio::select! {
            reached = reach(context, projection, token, deadline) => reached?,
            refusal = refused_by_the_log(&context.console, token) => {
                waited("refused");
                return Err(refusal);
            }
        };
        if reached {
            waited("reached");
            Ok(())
        } else {
            waited("timeout");
            Err(ApiError::NotYetConsistent {
                projection,
                waited_ms: started.elapsed().as_millis(),
            })
        }
    }
}

/// Reads `projection`'s checkpoints until they pass `token` (true) or `deadline` (false), less
/// often as the wait goes on: a projection that stopped is not also flooded by its readers.
async fn reach(
    context: &ApiContext,
    projection: &'static str,
    token: &ConsistencyToken,
    deadline: Instant,
) -> Result<bool, ApiError> {
    let mut poll = FIRST_POLL;
    loop {
        let checkpoints = read_models::checkpoint::checkpoints(&context.pool, projection).await?;
        let reached = token.positions().iter().all(|(partition, needed)| {
            checkpoints
                .get(partition)
                .is_some_and(|next_offset| next_offset >= needed)
        });
        if reached {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        sleep(poll).await;
        poll = (poll * 2).min(LAST_POLL);
    }
}

/// Resolves, after [`ASK_LOG_AFTER`], only if the events log has not reached a position of
/// `token`: no wait could then pass it (the token is forged, or from a log created again), and
/// the refusal names the position. A log that cannot be asked leaves the wait to its deadline.
async fn refused_by_the_log(console: &Console, token: &ConsistencyToken) -> ApiError {
    sleep(ASK_LOG_AFTER).await;
    match console.events_log_ends().await {
        Ok(ends) => {
            if let Some(refusal) = past_the_log(token, &ends) {
                return refusal;
            }
        }
        Err(error) => debug!(%error, "cannot ask where the events log ends; the query waits"),
    }
    std::future::pending().await
}

/// The first position of `token` beyond the log's `ends`, as the refusal that names it.
fn past_the_log(token: &ConsistencyToken, ends: &BTreeMap<i32, i64>) -> Option<ApiError> {
    let detail = token
        .positions()
        .iter()
        .find_map(|(&partition, &needed)| match ends.get(&partition) {
            None => Some(format!(
                "names partition {partition}, but the events log has {} partitions: it is not a token of this log",
                ends.len()
            )),
            Some(&end) if needed > end => Some(format!(
                "needs offset {needed} of partition {partition}, past the end of the events log ({end}): it is not a token of this log"
            )),
            Some(_) => None,
        })?;
    Some(ApiError::InvalidParameter(InvalidParameter {
        field: "consistency_token",
        detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> BTreeMap<i32, i64> {
        BTreeMap::from([(0, 10), (1, 0)])
    }

    fn refusal(token: &ConsistencyToken) -> Option<String> {
        past_the_log(token, &ends()).map(|refusal| match refusal {
            ApiError::InvalidParameter(invalid) => {
                assert_eq!(invalid.field, "consistency_token");
                invalid.detail
            }
            other => panic!("not an invalid parameter: {other:?}"),
        })
    }

    #[test]
    fn a_token_within_the_log_is_waited_for() {
        assert_eq!(
            refusal(&ConsistencyToken::at(0, 10).merge(&ConsistencyToken::at(1, 0))),
            None
        );
        assert_eq!(refusal(&ConsistencyToken::default()), None);
    }

    #[test]
    fn a_position_past_the_log_s_end_or_on_a_partition_it_lacks_is_named() {
        let past = refusal(&ConsistencyToken::at(0, 3).merge(&ConsistencyToken::at(1, 1))).expect("refused");
        assert!(
            past.contains("offset 1 of partition 1") && past.contains("(0)"),
            "{past}"
        );
        let elsewhere = refusal(&ConsistencyToken::at(7, 1)).expect("refused");
        assert!(
            elsewhere.contains("partition 7") && elsewhere.contains("has 2 partitions"),
            "{elsewhere}"
        );
    }
}
