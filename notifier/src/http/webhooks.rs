//! `/api/v1/webhooks`: a user registers, lists, reads and deletes its own webhooks (at most
//! `WEBHOOKS_PER_USER` at once) and lists their deliveries. Every statement names the caller as
//! owner, so another user's webhook is a 404, exactly like one that does not exist.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::auth::Claims;
use service_kit::extract::{InvalidParameter, Path, Query};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::extract::{JsonObject, BODY_LIMIT};
use super::openapi::{
    event_types_schema, BodyTooLarge, Guarded, InvalidField, MalformedBody, OneWebhook, TooManyWebhooks,
    UnsupportedMediaType,
};
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

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(register, list, read, delete, list_deliveries))]
pub(super) struct WebhooksApi;

/// A registration, as `registration` reads it field by field (so that each problem names its
/// field); declared here for the document.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "declared for the document; `registration` reads the fields by name"
)]
struct WebhookRequest {
    /// An absolute `http` or `https` URL, at most 2048 characters, that does not point into a
    /// private network.
    #[schema(example = "https://hooks.example.com/orderstream")]
    url: String,
    /// The events to receive.
    #[schema(schema_with = event_types_schema)]
    events: Vec<String>,
    /// At most 500 characters.
    description: Option<String>,
}

/// The answer to a registration: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
struct Registered {
    #[serde(flatten)]
    webhook: Webhook,
    /// The key the deliveries are signed with (`whsec_…`, Standard Webhooks).
    secret: String,
}

/// Register a webhook for the caller's own events.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = WebhookRequest,
    security(("bearer" = ["webhooks:write"])),
    responses(
        (status = 201, description = "Registered.", body = Registered, headers(
            ("Location" = String, description = "`/api/v1/webhooks/{webhook_id}`"),
        ), links(
            ("read" = (operation_id = "read", parameters(("webhook_id" = "$response.body#/webhook_id")))),
            ("list_deliveries" = (operation_id = "list_deliveries", parameters(("webhook_id" = "$response.body#/webhook_id")))),
            ("delete" = (operation_id = "delete", parameters(("webhook_id" = "$response.body#/webhook_id")))),
        )),
        Guarded,
        (status = 400, response = MalformedBody),
        (status = 409, response = TooManyWebhooks),
        (status = 413, response = BodyTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = InvalidField),
    )
)]
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
#[derive(Debug, Serialize, ToSchema)]
struct Webhooks {
    /// Oldest first.
    items: Vec<Webhook>,
}

/// The caller's webhooks, without their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Every webhook of the caller.", body = Webhooks),
        Guarded,
    )
)]
#[tracing::instrument(skip_all, fields(owner = %claims.user_id()))]
async fn list(State(context): State<ApiContext>, claims: Claims) -> Result<Json<Webhooks>, ApiError> {
    let items = webhooks::list(&context.pool, claims.user_id()).await?;
    Ok(Json(Webhooks { items }))
}

/// One of the caller's webhooks, without its secret.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook's id")),
    security(("bearer" = ["webhooks:write"])),
    responses(
        (status = 200, description = "The webhook.", body = Webhook),
        OneWebhook,
    )
)]
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

/// Delete one of the caller's webhooks, and its deliveries with it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook's id")),
    security(("bearer" = ["webhooks:write"])),
    responses(
        (status = 204, description = "Deleted."),
        OneWebhook,
    )
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// Deliveries per page, 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One page of a webhook's deliveries.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryPage {
    /// In `delivery_id` order.
    deliveries: Vec<Delivery>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<i64>,
}

/// The deliveries of one of the caller's webhooks, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook's id"), Page),
    security(("bearer" = ["webhooks:write"])),
    responses(
        (status = 200, description = "One page of deliveries.", body = DeliveryPage),
        OneWebhook,
    )
)]
#[tracing::instrument(skip(context, claims))]
async fn list_deliveries(
    State(context): State<ApiContext>,
    claims: Claims,
    Path(webhook_id): Path<Uuid>,
    Query(page): Query<Page>,
) -> Result<Json<DeliveryPage>, ApiError> {
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
    Ok(Json(DeliveryPage {
        deliveries: found,
        next_after,
    }))
}
