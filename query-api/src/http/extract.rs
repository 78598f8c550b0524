//! Path and query extractors whose failures are problem+json naming what was wrong, not axum's
//! plain-text rejections.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::FromRequestParts;

use super::ApiError;

/// Like `axum::extract::Path`: a segment that does not decode (percent-encoded bytes that are
/// not UTF-8) is a 400 naming the path.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(super) struct Path<T>(pub(super) T);

/// Like `axum::extract::Query`: a query string that does not parse (a parameter given twice, or
/// of the wrong type) is a 400 naming the query.
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
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

    async fn answer(uri: &str) -> (StatusCode, String, String) {
        let router: Router = Router::new().route("/list", get(list)).route("/one/{name}", get(one));
        let response = router
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap_or_else(|never| match never {})
            .into_response();
        let status = response.status();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        (status, content_type, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_repeated_query_parameter_is_a_problem_naming_the_query() {
        let (status, content_type, body) = answer("/list?limit=1&limit=2").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/problem+json");
        assert!(
            body.contains("/problems/invalid-parameter") && body.contains("\"field\":\"query\""),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_path_that_is_not_utf8_is_a_problem_naming_the_path() {
        let (status, content_type, body) = answer("/one/%FF").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/problem+json");
        assert!(body.contains("\"field\":\"path\""), "{body}");
        assert_eq!(answer("/one/J%C3%B6rg").await.2, "Jörg");
    }
}
