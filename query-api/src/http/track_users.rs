//! `track_user`: per customer name, how many orders and since when.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::consistency::Consistency;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "track_user";
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/track-users", get(list))
        .route("/api/v1/track-users/{name}", get(by_name))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct TrackUser {
    id: Uuid,
    name: String,
    counter: i64,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<TrackUser>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<String>,
    after: Option<String>,
}

#[tracing::instrument(skip(context, consistency))]
async fn by_name(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(name): Path<String>,
) -> Result<Json<TrackUser>, ApiError> {
    consistency.wait(&context, PROJECTION).await?;
    sqlx::query_as("SELECT id, name, counter, created_at FROM track_user WHERE name = $1")
        .bind(name.trim())
        .fetch_optional(&context.pool)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound {
            resource: "track user",
            key: name,
        })
}

/// Keyset pagination by name: stable under concurrent inserts, no offsets to drift.
#[tracing::instrument(skip(context, consistency))]
async fn list(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let limit = parse_limit(params.limit.as_deref())?;
    consistency.wait(&context, PROJECTION).await?;
    let items: Vec<TrackUser> = sqlx::query_as(
        "SELECT id, name, counter, created_at FROM track_user \
         WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2",
    )
    .bind(params.after)
    .bind(limit + 1)
    .fetch_all(&context.pool)
    .await?;
    Ok(Json(page(items, limit)))
}

fn page(mut items: Vec<TrackUser>, limit: i64) -> Page {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_after = more.then(|| items.last().map(|u| u.name.clone())).flatten();
    Page { items, next_after }
}

/// `limit`: 1 to 500, default 50.
pub(super) fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or(ApiError::InvalidParameter {
            field: "limit",
            detail: format!("must be an integer from 1 to {MAX_LIMIT}, got `{raw}`"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("500")).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten"] {
            assert!(matches!(
                parse_limit(Some(bad)),
                Err(ApiError::InvalidParameter { field: "limit", .. })
            ));
        }
    }
}
