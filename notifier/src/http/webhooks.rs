//! `/api/v1/webhooks`: a user registers, lists, reads and deletes its own webhooks (at most
//! `WEBHOOKS_PER_USER` at once) and lists their deliveries. Every statement names the caller as
//! owner, so another user's webhook is a 404, exactly like one that does not exist.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::auth::Claims;
use service_kit::extract::{InvalidParameter, Path, Query};
use uuid::Uuid;

use super::extract::{JsonObject, BODY_LIMIT};
use super::{registration, ApiContext, ApiError};
use crate::signature::WebhookSecret;
use crate::store::deliveries::{self, Delivery};
use crate::store::webhooks::{self, Webhook};

/// Deliveries per page when the client does not say.
const DEFAULT_PAGE: i64 = 50;
/// Most deliveries per page.
const MAX_PAGE: i64 = 500;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/webhooks", post(register).get(list))
        .route("/api/v1/webhooks/{webhook_id}", get(read).delete(delete))
        .route("/api/v1/webhooks/{webhook_id}/deliveries", get(list_deliveries))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The answer to a registration: the only time the secret is shown.
#[derive(Debug, Serialize)]
struct Registered {
    #[serde(flatten)]
    webhook: Webhook,
    secret: String,
}

#[tracing::instrument(skip_all, fields(owner = %claims.user_id()))]
async fn register(
    State(context): State<ApiContext>,
    claims: Claims,
    JsonObject(fields): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let (webhook, url) = registration::parse(fields)?;
    context
        .guard
        .check_url(&url)
        .await
        .map_err(|refused| ApiError::field("url", format!("is refused: {refused}")))?;
    let secret = WebhookSecret::generate();
    let limit = context.webhooks_per_user;
    let stored = webhooks::insert(
        &context.pool,
        claims.user_id(),
        Uuid::new_v4(),
        &webhook,
        &secret,
        limit,
    )
    .await?
    .ok_or(ApiError::TooManyWebhooks { limit })?;
    let location = format!("/api/v1/webhooks/{}", stored.webhook_id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(Registered {
            webhook: stored,
            secret: secret.encoded(),
        }),
    ))
}

/// The caller's webhooks.
#[derive(Debug, Serialize)]
struct Webhooks {
    items: Vec<Webhook>,
}

#[tracing::instrument(skip_all, fields(owner = %claims.user_id()))]
async fn list(State(context): State<ApiContext>, claims: Claims) -> Result<Json<Webhooks>, ApiError> {
    let items = webhooks::list(&context.pool, claims.user_id()).await?;
    Ok(Json(Webhooks { items }))
}

#[tracing::instrument(skip(context, claims))]
async fn read(
    State(context): State<ApiContext>,
    claims: Claims,
    Path(webhook_id): Path<Uuid>,
) -> Result<Json<Webhook>, ApiError> {
    webhooks::find(&context.pool, claims.user_id(), webhook_id)
        .await?
        .map(Json)
        .ok_or(ApiError::WebhookNotFound { webhook_id })
}

#[tracing::instrument(skip(context, claims))]
async fn delete(
    State(context): State<ApiContext>,
    claims: Claims,
    Path(webhook_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if webhooks::delete(&context.pool, claims.user_id(), webhook_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::WebhookNotFound { webhook_id })
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    /// The last `delivery_id` of the previous page.
    after: Option<i64>,
    limit: Option<i64>,
}

#[tracing::instrument(skip(context, claims))]
async fn list_deliveries(
    State(context): State<ApiContext>,
    claims: Claims,
    Path(webhook_id): Path<Uuid>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(InvalidParameter {
            field: "limit",
            detail: format!("must be from 1 to {MAX_PAGE}"),
        }
        .into());
    }
    let owner = claims.user_id();
    // Asked first so that another user's webhook is a 404, not an empty page.
    if webhooks::find(&context.pool, owner, webhook_id).await?.is_none() {
        return Err(ApiError::WebhookNotFound { webhook_id });
    }
    let after = page.after.unwrap_or(0);
    let found: Vec<Delivery> = deliveries::list(&context.pool, owner, webhook_id, after, limit).await?;
    let next_after = (found.len() as i64 == limit)
        .then(|| found.last().map(|d| d.delivery_id))
        .flatten();
    Ok(Json(json!({ "deliveries": found, "next_after": next_after })))
}
