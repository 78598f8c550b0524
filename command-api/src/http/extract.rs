//! A JSON body and a path extractor whose every failure is a problem+json naming what was wrong.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The edge takes small bodies only; an order is well under this.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Like `axum::Json`, but a wrong type names the field (`serde_path_to_error`) and every
/// rejection is an [`ApiError`].
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
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
        parse(&bytes).map(Json)
    }
}

/// Like `axum::extract::Path`, but a segment that does not decode (percent-encoded bytes that
/// are not UTF-8) is a 422 naming the path, as a malformed id is, not axum's plain-text 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::FieldType {
            field: "path".to_owned(),
            detail: rejection.body_text(),
        }
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from an array; a body must be an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::MalformedBody("the body must be a JSON object".to_owned()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() && field != "." {
            ApiError::FieldType {
                field,
                detail: inner.to_string(),
            }
        } else {
            ApiError::MalformedBody(inner.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        match parse::<Body>(br#"{"name": 5}"#) {
            Err(ApiError::FieldType { field, .. }) => assert_eq!(field, "name"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn broken_json_and_non_objects_are_malformed() {
        assert!(matches!(parse::<Body>(b"{\"name\":"), Err(ApiError::MalformedBody(_))));
        assert!(matches!(parse::<Body>(b"[1]"), Err(ApiError::MalformedBody(_))));
    }
}
