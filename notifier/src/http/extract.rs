//! Extractors whose every failure is a problem+json naming what was wrong, not axum's
//! plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::ApiError;

/// Webhook registrations are small; this bounds what a client can make the API parse (set on
/// the router as its body limit).
pub(super) const BODY_LIMIT: usize = 16 * 1024;

/// A JSON object body, its fields read by name afterwards so that each problem (missing,
/// unknown, wrong type) names its field.
#[derive(Debug)]
pub(super) struct JsonObject(pub(super) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge { limit: BODY_LIMIT }
            } else {
                ApiError::MalformedBody(rejection.body_text())
            }
        })?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(_) => Err(ApiError::MalformedBody("the body must be a JSON object".to_owned())),
            Err(error) => Err(ApiError::MalformedBody(error.to_string())),
        }
    }
}

/// Like `axum::extract::Path`: a segment that does not parse (a webhook id that is not a UUID)
/// is a 400 naming the path.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(super) struct Path<T>(pub(super) T);

/// Like `axum::extract::Query`: a query string that does not parse is a 400 naming the query.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(super) struct Query<T>(pub(super) T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::InvalidParameter {
            field: "path",
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::InvalidParameter {
            field: "query",
            detail: rejection.body_text(),
        }
    }
}
