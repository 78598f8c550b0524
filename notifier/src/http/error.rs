//! The one mapping from webhook API failures to HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::extract::{BodyRejection, InvalidParameter};
use service_kit::Problem;
use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// 400 when the body is not JSON or not a JSON object, 413 when it is too large, 415 when it
    /// is not declared as JSON or is encoded.
    #[error(transparent)]
    Body(#[from] BodyRejection),
    /// 422: a field is missing, unknown, of the wrong type or breaks a rule.
    #[error("`{field}` {detail}")]
    InvalidField { field: String, detail: String },
    /// 400: a query parameter or path segment is malformed.
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// 404: the caller has no webhook with that id (whether or not another user has).
    #[error("no webhook `{webhook_id}`")]
    WebhookNotFound { webhook_id: uuid::Uuid },
    /// 409: the caller already has as many webhooks as one user may.
    #[error("a user may have at most {limit} webhooks; delete one (`GET /api/v1/webhooks` lists yours) before registering another")]
    TooManyWebhooks { limit: u32 },
    /// 503 with `Retry-After`: PostgreSQL is unreachable or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match &self {
            Self::Body(rejection) => rejection.problem(),
            Self::InvalidField { field, .. } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field").field(field.clone())
            }
            Self::InvalidParameter(invalid) => invalid.problem(),
            Self::WebhookNotFound { .. } => Problem::new(StatusCode::NOT_FOUND, "webhook-not-found", "No such webhook"),
            Self::TooManyWebhooks { .. } => {
                Problem::new(StatusCode::CONFLICT, "too-many-webhooks", "Too many webhooks")
            }
            // No internals for the client; the cause is logged by the middleware.
            Self::Store(_) => {
                return service_kit::problem::respond(
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database-unavailable",
                        "Webhooks unavailable",
                    )
                    .retry_after(2),
                    &self,
                )
            }
        };
        service_kit::problem::respond(problem.detail(self.to_string()), &self)
    }
}

impl ApiError {
    pub(crate) fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            detail: detail.into(),
        }
    }
}
