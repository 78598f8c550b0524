//! What the APIs' extractors share (feature `edge`): every failure is a problem+json naming
//! what was wrong, never axum's plain-text rejection.
//!
//! - [`json_body`] reads a body declared as JSON within the API's size limit; [`BodyRejection`]
//!   is why it did not, as each API's error type carries it.
//! - [`Path`] and [`Query`] answer a path segment or query string that does not parse with a 400
//!   `invalid-parameter` naming `path` or `query` ([`InvalidParameter`]). The command API answers
//!   a bad path with a 422 instead, as it does a malformed id, and declares its own `Path`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::Problem;

/// Why a JSON body was not read.
#[derive(Debug, Error)]
pub enum BodyRejection {
    /// 400: the body is not JSON, or not a JSON object.
    #[error("malformed request body: {0}")]
    Malformed(String),
    /// 415: the body is not declared as JSON.
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 415: the body is compressed (or otherwise encoded): it is read as sent, never decoded.
    #[error("a body with a `Content-Encoding` (other than `identity`) is not accepted; send it uncompressed")]
    UnsupportedEncoding,
    /// 413: the body is larger than the API accepts.
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl BodyRejection {
    /// The problem this answers, its message as detail.
    pub fn problem(&self) -> Problem {
        let problem = match self {
            Self::Malformed(_) => Problem::new(StatusCode::BAD_REQUEST, "malformed-body", "Malformed request body"),
            Self::UnsupportedMediaType | Self::UnsupportedEncoding => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::TooLarge { .. } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            ),
        };
        problem.detail(self.to_string())
    }
}

/// The bytes of `request`'s body, when it is declared as JSON (`application/json` or any
/// `+json` type), not encoded, and within `limit`, the body limit set on the API's router (the
/// limit itself is enforced there; it is named here for the answer).
///
/// A compressed body is refused by its coding rather than parsed as the JSON it is not (a gzip
/// body read as JSON is "not a JSON object"); decoding it would let a few kilobytes expand past
/// the body limit, which counts the bytes as sent.
pub async fn json_body<S: Send + Sync>(request: Request, state: &S, limit: usize) -> Result<Bytes, BodyRejection> {
    let encoded = request
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|coding| !coding.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(BodyRejection::UnsupportedEncoding);
    }
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
        return Err(BodyRejection::UnsupportedMediaType);
    }
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyRejection::TooLarge { limit }
        } else {
            BodyRejection::Malformed(rejection.body_text())
        }
    })?;
    // JSON has no byte-order mark (RFC 8259 §8.1); the parser would only say "expected value".
    if bytes.starts_with(BYTE_ORDER_MARK) {
        return Err(BodyRejection::Malformed(
            "the body starts with a byte-order mark (U+FEFF), which JSON does not have; send it without".to_owned(),
        ));
    }
    Ok(bytes)
}

/// U+FEFF in UTF-8.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

/// 400: a query parameter, path segment or header is malformed; `field` names it.
#[derive(Debug, Error)]
#[error("`{field}`: {detail}")]
pub struct InvalidParameter {
    pub field: &'static str,
    pub detail: String,
}

impl InvalidParameter {
    /// The `invalid-parameter` problem naming the field, its message as detail.
    pub fn problem(&self) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-parameter", "Invalid parameter")
            .field(self.field)
            .detail(self.to_string())
    }
}

impl IntoResponse for InvalidParameter {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// Like `axum::extract::Path`: a segment that does not parse (percent-encoded bytes that are not
/// UTF-8, an id of the wrong type) is a 400 naming the path.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(InvalidParameter))]
pub struct Path<T>(pub T);

/// Like `axum::extract::Query`: a query string that does not parse (a parameter given twice, or
/// of the wrong type) is a 400 naming the query.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(InvalidParameter))]
pub struct Query<T>(pub T);

impl From<PathRejection> for InvalidParameter {
    fn from(rejection: PathRejection) -> Self {
        Self {
            field: "path",
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for InvalidParameter {
    fn from(rejection: QueryRejection) -> Self {
        Self {
            field: "query",
            detail: rejection.body_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::{get, post};
    use axum::Router;
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;

    #[derive(Deserialize)]
    struct Params {
        #[allow(dead_code)]
        limit: Option<u32>,
    }

    async fn list(_: Query<Params>) -> &'static str {
        "ok"
    }

    async fn one(Path(name): Path<String>) -> String {
        name
    }

    async fn echo(request: Request<Body>) -> Response {
        match json_body(request, &(), 16).await {
            Ok(bytes) => bytes.into_response(),
            Err(rejection) => rejection.problem().into_response(),
        }
    }

    async fn answer(request: Request<Body>) -> (StatusCode, String, String) {
        let router: Router = Router::new()
            .route("/list", get(list))
            .route("/one/{name}", get(one))
            .route("/echo", post(echo))
            .layer(axum::extract::DefaultBodyLimit::max(16));
        let response = router
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {})
            .into_response();
        let status = response.status();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        (status, content_type, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get_answer(uri: &str) -> (StatusCode, String, String) {
        answer(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn post_answer(content_type: &str, body: &'static str) -> (StatusCode, String, String) {
        let request = Request::post("/echo").header(CONTENT_TYPE, content_type);
        answer(request.body(Body::from(body)).unwrap()).await
    }

    #[tokio::test]
    async fn an_encoded_body_is_refused_by_its_coding() {
        let request = |coding: &str, body: Vec<u8>| {
            Request::post("/echo")
                .header(CONTENT_TYPE, "application/json")
                .header(CONTENT_ENCODING, coding)
                .body(Body::from(body))
                .unwrap()
        };
        let gzipped = b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec();
        let (status, content_type, body) = answer(request("gzip", gzipped)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(content_type, "application/problem+json");
        assert!(
            body.contains("/problems/unsupported-media-type") && body.contains("`Content-Encoding`"),
            "{body}"
        );
        assert_eq!(answer(request("Identity", b"{}".to_vec())).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_repeated_query_parameter_is_a_problem_naming_the_query() {
        let (status, content_type, body) = get_answer("/list?limit=1&limit=2").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/problem+json");
        assert!(
            body.contains("/problems/invalid-parameter") && body.contains("\"field\":\"query\""),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_path_that_is_not_utf8_is_a_problem_naming_the_path() {
        let (status, content_type, body) = get_answer("/one/%FF").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/problem+json");
        assert!(body.contains("\"field\":\"path\""), "{body}");
        assert_eq!(get_answer("/one/J%C3%B6rg").await.2, "Jörg");
    }

    #[tokio::test]
    async fn a_body_is_read_when_declared_as_json_and_within_the_limit() {
        for (case, content_type, body, status, kind) in [
            ("json", "application/json", "{}", StatusCode::OK, None),
            (
                "+json with parameters",
                "application/merge-patch+JSON; charset=utf-8",
                "{}",
                StatusCode::OK,
                None,
            ),
            (
                "not json",
                "text/plain",
                "{}",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported-media-type"),
            ),
            (
                "a byte-order mark",
                "application/json",
                "\u{feff}{}",
                StatusCode::BAD_REQUEST,
                Some("malformed-body"),
            ),
            (
                "too large",
                "application/json",
                "{\"a\": \"0123456789\"}",
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("body-too-large"),
            ),
        ] {
            let (answered, _, text) = post_answer(content_type, body).await;
            assert_eq!(answered, status, "{case}: {text}");
            if let Some(kind) = kind {
                assert!(text.contains(&format!("/problems/{kind}")), "{case}: {text}");
            }
        }
    }
}
