//! `track_user`: per customer name, how many orders and since when.

use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use read_models::track_user::{self, TrackUserRow};
use serde::Serialize;
use service_kit::extract::{Path, Query};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::page::{found, page_of, parse_limit, parse_text, query_path, PageParams};
use super::reader::Read;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "track_user";

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
#[derive(Debug, Serialize, ToSchema)]
struct TrackUser {
    /// A UUID v5 of the name: the same on every replay.
    id: Uuid,
    name: String,
    /// Orders placed under the name.
    counter: i64,
    /// When the first of them was placed (event time).
    created_at: DateTime<Utc>,
}

impl From<TrackUserRow> for TrackUser {
    fn from(row: TrackUserRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            counter: row.counter,
            created_at: row.created_at,
        }
    }
}

page_of!(TrackUserPage of TrackUser);

query_path! {
    for staff;
    path = "/api/v1/track-users/{name}", tag = "track-users",
    params(("name" = String, Path, description = "The customer name, as placed (trimmed)")),
    ok = ("The name's counter.", TrackUser), not_found = NotFound;
    /// One customer name's order count and first order time (staff).
    async fn by_name(read: Read, Path(name): Path<String>) -> Result<Json<TrackUser>, ApiError> {
        read.wait(PROJECTION).await?;
        let row = track_user::by_name(read.pool(), parse_text("name", name.trim())?).await?;
        Ok(Json(found(row, "track user", name)?.into()))
    }
}

query_path! {
    for staff;
    path = "/api/v1/track-users", tag = "track-users",
    summary = "Every customer name's counter, by name (staff).",
    params(PageParams),
    ok = ("One page, ordered by name (bytewise).", TrackUserPage);
    /// Keyset pagination by name: stable under concurrent inserts, no offsets to drift.
    async fn list(read: Read, Query(params): Query<PageParams>) -> Result<Json<TrackUserPage>, ApiError> {
        let limit = parse_limit(params.limit.as_deref())?;
        read.wait(PROJECTION).await?;
        let after = params.after.as_deref().map(|after| parse_text("after", after)).transpose()?;
        let items = track_user::page(read.pool(), after, limit + 1).await?.into_iter().map(TrackUser::from).collect();
        Ok(Json(TrackUserPage::of(items, limit, |user| user.name.clone())))
    }
}
