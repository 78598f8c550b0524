//! The notifier's OpenAPI 3.1 document, served open at `GET /openapi.json`. It is generated from
//! the `#[utoipa::path]` of every route and the types beside the handlers; the problem responses
//! below list every problem `type` a route can answer, as `error.rs` maps them.

use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::RefOr;

use super::webhooks;
use crate::notification::EVENT_TYPES;

service_kit::problem_responses! {
    /// The body is not JSON or not a JSON object (`malformed-body`). Nothing was stored.
    pub(super) MalformedBody = 400 ["malformed-body"];
    /// A path segment or query parameter is malformed (`field` names it): a webhook id that is
    /// not a UUID, a `limit` out of range.
    pub(super) InvalidParameter = 400 ["invalid-parameter"];
    /// No valid bearer token (missing, malformed, expired, badly signed).
    pub(super) Unauthorized = 401 ["unauthorized"];
    /// The token lacks the `webhooks:write` scope.
    pub(super) Forbidden = 403 ["forbidden"];
    /// The caller has no webhook with that id, whether or not another user has.
    pub(super) WebhookNotFound = 404 ["webhook-not-found"];
    /// The caller already has as many webhooks as one user may (`WEBHOOKS_PER_USER`). Nothing
    /// was stored.
    pub(super) TooManyWebhooks = 409 ["too-many-webhooks"];
    /// The body is over 16 KiB. Nothing was stored.
    pub(super) BodyTooLarge = 413 ["body-too-large"];
    /// The body is not declared as JSON, or is sent with a `Content-Encoding`. Nothing was stored.
    pub(super) UnsupportedMediaType = 415 ["unsupported-media-type"];
    /// A field is missing, unknown, of the wrong type or breaks a rule (`field` names it), or the
    /// URL points where webhooks may not go. Nothing was stored.
    pub(super) InvalidField = 422 ["invalid-field"];
    /// PostgreSQL is unavailable.
    pub(super) Unavailable = 503 ["database-unavailable"];
}

service_kit::problem_response_set! {
    /// What every webhook route may answer besides its own.
    pub(super) Guarded { 401 => Unauthorized, 403 => Forbidden, 503 => Unavailable }
    /// What a route on one webhook may answer besides its own: a malformed id, and a webhook the
    /// caller does not have.
    pub(super) OneWebhook {
        400 => InvalidParameter,
        401 => Unauthorized,
        403 => Forbidden,
        404 => WebhookNotFound,
        503 => Unavailable,
    }
}

/// The event names a webhook may subscribe to, as the registration checks them.
pub(super) fn event_types_schema() -> Schema {
    let name = service_kit::openapi::string_enum(EVENT_TYPES, false);
    ArrayBuilder::new().items(RefOr::T(name)).min_items(Some(1)).into()
}

service_kit::api_document! {
    /// The whole document: the shared parts and the webhook routes, each of which names its
    /// scope and answers 401, 403 and 503.
    pub(super) fn document() {
        metrics: true,
        routes: [webhooks::WebhooksApi],
        openapi(
            info(
                title = "orderstream notifier",
                description = "Webhooks: a user registers endpoints for the events of its own orders and \
                               purchases, and reads what was delivered to each. Deliveries are signed \
                               POSTs (Standard Webhooks). Errors are `application/problem+json` with a \
                               stable `type`."
            ),
            components(responses(
                MalformedBody,
                InvalidParameter,
                Unauthorized,
                Forbidden,
                WebhookNotFound,
                TooManyWebhooks,
                BodyTooLarge,
                UnsupportedMediaType,
                InvalidField,
                Unavailable
            )),
            tags(
                (name = "webhooks", description = "A user's webhooks and their deliveries."),
                (name = "operations", description = "Health, readiness, metrics and this document; open."),
            )
        ),
        covers: ("POST /api/v1/webhooks", "get", ["401", "403", "503"]),
    }
}
