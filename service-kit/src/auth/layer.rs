//! Guarding routes by scope: a tower layer for `Router::route_layer`, and the [`Claims`] extractor
//! for the handlers behind it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::{AuthError, Claims, Verifier};
use crate::Problem;

/// Answers 401 unless the request carries a valid bearer token, and 403 unless that token has
/// `scope`; otherwise puts the token's [`Claims`] into the request extensions and calls the route.
///
/// Meant for `Router::route_layer`, which wraps only the routes added before it (so `/health`,
/// `/ready` and `/metrics` added afterwards stay open) and leaves unknown paths a 404 rather than
/// a 401.
pub fn require_scope(verifier: Verifier, scope: &'static str) -> RequireScopeLayer {
    RequireScopeLayer {
        verifier,
        needed: Needed::One(scope),
    }
}

/// [`require_scope`] for routes several kinds of caller use: the token needs at least one of
/// `scopes`, and the handler decides from the [`Claims`] what that one allows.
pub fn require_any_scope(verifier: Verifier, scopes: &'static [&'static str]) -> RequireScopeLayer {
    RequireScopeLayer {
        verifier,
        needed: Needed::AnyOf(scopes),
    }
}

/// The scopes a route accepts, any one of them sufficing.
#[derive(Debug, Clone, Copy)]
enum Needed {
    One(&'static str),
    AnyOf(&'static [&'static str]),
}

impl Needed {
    fn scopes(&self) -> &[&'static str] {
        match self {
            Self::One(scope) => std::slice::from_ref(scope),
            Self::AnyOf(scopes) => scopes,
        }
    }
}

/// See [`require_scope`].
#[derive(Debug, Clone)]
pub struct RequireScopeLayer {
    verifier: Verifier,
    needed: Needed,
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            verifier: self.verifier.clone(),
            needed: self.needed,
        }
    }
}

/// The service [`RequireScopeLayer`] wraps a route in.
#[derive(Debug, Clone)]
pub struct RequireScope<S> {
    inner: S,
    verifier: Verifier,
    needed: Needed,
}

impl<S> Service<Request> for RequireScope<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let scopes = self.needed.scopes();
        let verdict = authenticate(&self.verifier, &mut request).and_then(|claims| {
            claims.ensure_any_scope(scopes)?;
            Ok(claims)
        });
        match verdict {
            Ok(claims) => {
                request.extensions_mut().insert(claims);
                Box::pin(self.inner.call(request))
            }
            Err(error) => {
                // The reason names the failed check only; the token itself is never logged.
                tracing::debug!(scopes = ?scopes, reason = %error, "request refused");
                Box::pin(std::future::ready(Ok(error.into_response())))
            }
        }
    }
}

/// The outcome of verifying a request's bearer token, kept in its extensions so that each
/// request has its signature checked once, whichever layer asks first (the edge's rate limit,
/// then the scope check).
#[derive(Debug, Clone)]
struct Authentication(Result<Claims, AuthError>);

/// The verified claims of `request`'s bearer token: the outcome an earlier layer left in its
/// extensions, else verified now and left there for the next.
pub fn authenticate(verifier: &Verifier, request: &mut Request) -> Result<Claims, AuthError> {
    if let Some(Authentication(outcome)) = request.extensions().get() {
        return outcome.clone();
    }
    let outcome = authorization(request.headers()).and_then(|header| verifier.verify(header));
    request.extensions_mut().insert(Authentication(outcome.clone()));
    outcome
}

/// The one `Authorization` value, if any; several, or one that is not ASCII, are malformed.
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader);
    }
    value.to_str().map(Some).map_err(|_| AuthError::MalformedHeader)
}

/// The verified claims, for handlers behind [`require_scope`]. On a route without it there are
/// none, which is a wiring mistake: answered 500 and logged, not blamed on the client.
impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims>().cloned().ok_or_else(|| {
            tracing::error!(
                path = parts.uri.path(),
                "Claims extracted on a route without auth::require_scope"
            );
            Problem::internal()
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::testkit::{hs256_token, now, SECRET, SECRET_OTHER};
    use crate::auth::{ORDERS_MANAGE, ORDERS_WRITE, READ};

    /// A protected write route reading the subject, then an open `/health`, on a stateful router.
    fn app() -> Router {
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        Router::new()
            .route("/orders", post(|claims: Claims| async move { claims.sub }))
            .route_layer(require_scope(verifier, ORDERS_WRITE))
            .route("/health", get(|| async { "ok" }))
            .route("/unguarded", get(|claims: Claims| async move { claims.sub }))
            .with_state(())
    }

    async fn call(authorization: Option<&str>, path: &str) -> (StatusCode, HeaderMap, serde_json::Value) {
        let method = if path == "/orders" { "POST" } else { "GET" };
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = app().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        let body = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
        (status, headers, body)
    }

    fn bearer(scope: &str, secret: &str) -> String {
        let claims = json!({ "sub": "user-7", "scope": scope, "exp": now() + 60 });
        format!("Bearer {}", hs256_token(secret, &claims))
    }

    fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_token_is_verified_once_per_request() {
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        let mut request = Request::post("/orders")
            .header(header::AUTHORIZATION, bearer(ORDERS_WRITE, SECRET))
            .body(Body::empty())
            .expect("request");
        let first = authenticate(&verifier, &mut request).expect("valid");
        // Another key would refuse the token: only the kept outcome can pass it now.
        let other = Verifier::hs256(SECRET_OTHER, None, None).expect("verifier");
        assert_eq!(authenticate(&other, &mut request).expect("kept"), first);
        let router = Router::new()
            .route("/orders", post(|claims: Claims| async move { claims.sub }))
            .route_layer(require_scope(other, ORDERS_WRITE));
        let response = router.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn no_token_is_a_401_challenge_without_error_code() {
        let (status, headers, body) = call(None, "/orders").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(header(&headers, header::CONTENT_TYPE), "application/problem+json");
        assert_eq!(
            header(&headers, header::WWW_AUTHENTICATE),
            r#"Bearer realm="orderstream""#
        );
        assert_eq!(body["type"], "/problems/unauthorized");
        assert_eq!(body["status"], 401);
        assert_eq!(body["detail"], "missing bearer token");
    }

    #[tokio::test]
    async fn a_bad_token_is_a_401_invalid_token() {
        let (status, headers, body) = call(Some(&bearer(ORDERS_WRITE, SECRET_OTHER)), "/orders").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(header(&headers, header::CONTENT_TYPE), "application/problem+json");
        let challenge = header(&headers, header::WWW_AUTHENTICATE);
        assert!(
            challenge.starts_with(r#"Bearer realm="orderstream", error="invalid_token""#),
            "{challenge}"
        );
        assert_eq!(body["detail"], "token signature is invalid");
    }

    #[test]
    fn several_authorization_headers_are_malformed() {
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        let mut headers = HeaderMap::new();
        let token = bearer(ORDERS_WRITE, SECRET);
        let value = HeaderValue::from_str(&token).expect("ascii");
        headers.append(AUTHORIZATION, value.clone());
        assert!(authorization(&headers).and_then(|h| verifier.verify(h)).is_ok());
        headers.append(AUTHORIZATION, value);
        assert_eq!(authorization(&headers), Err(AuthError::MalformedHeader));
    }

    #[tokio::test]
    async fn a_token_without_the_scope_is_a_403_naming_it() {
        let (status, headers, body) = call(Some(&bearer(READ, SECRET)), "/orders").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(header(&headers, header::CONTENT_TYPE), "application/problem+json");
        assert_eq!(
            header(&headers, header::WWW_AUTHENTICATE),
            r#"Bearer realm="orderstream", error="insufficient_scope", scope="orders:write""#
        );
        assert_eq!(body["type"], "/problems/forbidden");
        assert_eq!(body["scope"], "orders:write");
    }

    #[tokio::test]
    async fn the_right_scope_passes_and_the_handler_sees_the_subject() {
        let (status, _, body) = call(Some(&bearer("read orders:write", SECRET)), "/orders").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!("user-7"));
    }

    #[tokio::test]
    async fn routes_added_after_the_layer_stay_open() {
        let (status, _, _) = call(None, "/health").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = call(None, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn claims_on_an_unguarded_route_are_a_server_error() {
        let (status, headers, _) = call(Some(&bearer(ORDERS_WRITE, SECRET)), "/unguarded").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(header(&headers, header::CONTENT_TYPE), "application/problem+json");
    }

    #[tokio::test]
    async fn any_of_several_scopes_passes_and_the_refusal_names_them_all() {
        const CANCELLERS: &[&str] = &[ORDERS_WRITE, ORDERS_MANAGE];
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        let app = Router::new()
            .route("/orders", post(|claims: Claims| async move { claims.sub }))
            .route_layer(require_any_scope(verifier, CANCELLERS));
        for (scope, expected) in [
            (ORDERS_WRITE, StatusCode::OK),
            (ORDERS_MANAGE, StatusCode::OK),
            (READ, StatusCode::FORBIDDEN),
        ] {
            let request = Request::builder()
                .method("POST")
                .uri("/orders")
                .header(header::AUTHORIZATION, bearer(scope, SECRET))
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), expected, "{scope}");
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(
                    header(response.headers(), header::WWW_AUTHENTICATE),
                    r#"Bearer realm="orderstream", error="insufficient_scope", scope="orders:write orders:manage""#
                );
                let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
                let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(body["scope"], "orders:write orders:manage");
                assert_eq!(
                    body["detail"],
                    "this request needs a token with one of the scopes `orders:write`, `orders:manage`"
                );
            }
        }
    }

    #[derive(Clone)]
    struct AppState;

    #[test]
    fn the_layer_fits_routers_with_state() {
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        let _router: Router<AppState> = Router::new()
            .route("/x", post(|| async {}))
            .route_layer(require_scope(verifier.clone(), READ))
            .layer(require_scope(verifier, READ));
    }
}
