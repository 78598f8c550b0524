//! `track_user`: per customer name, how many orders and since when.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::consistency::{Consistency, TokenQuery};
use super::extract::{Path, Query};
use super::openapi::{Forbidden, InvalidParameter, NotFound, Unauthorized, Unavailable};
use super::page::parse_text;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "track_user";
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/track-users", get(list))
        .route("/api/v1/track-users/{name}", get(by_name))
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(by_name, list))]
pub(super) struct TrackUsersApi;

/// Per customer name, how many orders and since when.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
struct TrackUser {
    /// A UUID v5 of the name: the same on every replay.
    id: Uuid,
    name: String,
    /// Orders placed under the name.
    counter: i64,
    /// When the first of them was placed (event time).
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TrackUserPage)]
struct Page {
    items: Vec<TrackUser>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Items per page, 1 to 500; 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next_after` of the previous page: names after it, bytewise.
    after: Option<String>,
}

/// One customer name's order count and first order time (staff).
#[utoipa::path(
    get,
    path = "/api/v1/track-users/{name}",
    tag = "track-users",
    params(
        ("name" = String, Path, description = "The customer name, as placed (trimmed)"),
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "The name's counter.", body = TrackUser),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn by_name(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(name): Path<String>,
) -> Result<Json<TrackUser>, ApiError> {
    consistency.wait(&context, PROJECTION).await?;
    sqlx::query_as("SELECT id, name, counter, created_at FROM track_user WHERE name = $1")
        .bind(parse_text("name", name.trim())?)
        .fetch_optional(&context.pool)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound {
            resource: "track user",
            key: name,
        })
}

/// Keyset pagination by name: stable under concurrent inserts, no offsets to drift.
#[utoipa::path(
    get,
    path = "/api/v1/track-users",
    tag = "track-users",
    summary = "Every customer name's counter, by name (staff).",
    params(
        ListParams,
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "One page, ordered by name (bytewise).", body = Page),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
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
    .bind(
        params
            .after
            .as_deref()
            .map(|after| parse_text("after", after))
            .transpose()?,
    )
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
