//! The registration body: a JSON object whose fields are read by name afterwards. Path and query
//! extractors are `service_kit::extract`'s.

use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};
use service_kit::extract::{json_body, BodyRejection};

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
        let bytes = json_body(request, state, BODY_LIMIT).await?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(_) => Err(BodyRejection::Malformed("the body must be a JSON object".to_owned()).into()),
            Err(error) => Err(BodyRejection::Malformed(error.to_string()).into()),
        }
    }
}
