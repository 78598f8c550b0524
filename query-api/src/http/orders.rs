//! `order_status`: one order as of its latest event.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::consistency::Consistency;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "order_status";

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/api/v1/orders/{order_id}", get(by_id))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct OrderStatus {
    order_id: Uuid,
    name: String,
    note: Option<String>,
    status: String,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

#[tracing::instrument(skip(context, consistency))]
async fn by_id(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(order_id): Path<String>,
) -> Result<Json<OrderStatus>, ApiError> {
    let order_id: Uuid = order_id.parse().map_err(|_| ApiError::InvalidParameter {
        field: "order_id",
        detail: format!("must be a UUID, got `{order_id}`"),
    })?;
    consistency.wait(&context, PROJECTION).await?;
    sqlx::query_as(
        "SELECT order_id, name, note, status, placed_at, updated_at, version FROM order_status WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&context.pool)
    .await?
    .map(Json)
    .ok_or(ApiError::NotFound {
        resource: "order",
        key: order_id.to_string(),
    })
}
