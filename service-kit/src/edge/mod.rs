//! The HTTP edge of the APIs (feature `edge`): what stands between the network and the routes.
//!
//! [`Edge::wrap`] puts around a router, from the outside in:
//!
//! 1. request ids: `X-Request-Id` taken from the client when it is a sane token, generated
//!    otherwise, echoed on every answer and recorded on the request's log span, so every log
//!    line of the request carries it;
//! 2. CORS, as configured (answers preflights; off when no origin is allowed);
//! 3. a per-caller token-bucket rate limit: 429 `/problems/too-many-requests` with
//!    `Retry-After`, and `RateLimit`/`RateLimit-Policy` headers on every answer;
//! 4. a concurrency cap shedding load: 503 `/problems/overloaded` with `Retry-After` at once
//!    rather than an unbounded queue;
//! 5. a whole-request timeout: 408 `/problems/request-timeout`, connection closed.
//!
//! The rate limit comes before the cap so that one abusive caller is refused without taking a
//! slot from everyone else. `/health`, `/ready` and `/metrics` skip both: probes must keep
//! answering while the API sheds load, or an orchestrator would restart a busy replica.
//!
//! [`crate::server::serve`] adds the header-read timeout, below HTTP routing.
//!
//! # Whom the rate limit counts
//!
//! The caller is the `sub` of the bearer token, verified here with the service's own
//! [`Verifier`]: the limit sits outside the routes (so it also guards the auth check), and an
//! unverified `sub` would let anyone drain another user's bucket with a forged token. Verifying
//! twice costs microseconds (one HMAC, or one RSA public-key operation) against a request that
//! takes milliseconds. Without a valid token the caller is the client's IP address, so a flood of
//! garbage tokens shares one bucket.

mod config;
mod rate_limit;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONNECTION;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::Semaphore;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

pub use config::{DatabaseApiArgs, EdgeArgs, EdgeConfigError};
use rate_limit::{Caller, RateLimiter};

use crate::auth::{authenticate, Verifier};
use crate::metrics::Registry;
use crate::server::{self, BindError, Listener};
use crate::telemetry::{TraceContext, TRACEPARENT, TRACESTATE};
use crate::Problem;

/// The request id header, read from clients and set on every answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-chosen request id accepted; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Paths that neither count against the rate limit nor get shed.
const OPERATIONAL_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// The edge of one API, built from its settings at start-up.
#[derive(Debug, Clone)]
pub struct Edge {
    args: EdgeArgs,
    verifier: Verifier,
    cors: Option<tower_http::cors::CorsLayer>,
}

impl Edge {
    /// Checks `args`; `verifier` identifies callers for the rate limit.
    pub fn new(args: &EdgeArgs, verifier: Verifier) -> Result<Self, EdgeConfigError> {
        args.validate()?;
        Ok(Self {
            cors: args.cors()?,
            args: args.clone(),
            verifier,
        })
    }

    /// How long a client may take to send its request head; for [`crate::server::serve`].
    fn header_read_timeout(&self) -> Duration {
        self.args.header_read_timeout()
    }

    /// `router` behind the edge (see the module documentation for what and in which order).
    pub fn wrap(&self, router: Router) -> Router {
        let mut router = router.layer(from_fn_with_state(self.args.request_timeout(), request_timeout));
        if self.args.max_concurrent_requests > 0 {
            let slots = Arc::new(Semaphore::new(self.args.max_concurrent_requests));
            router = router.layer(from_fn_with_state(slots, shed_load));
        }
        if self.args.rate_limit_per_second > 0.0 {
            let limit = Arc::new(RateLimit {
                limiter: RateLimiter::new(self.args.rate_limit_per_second, self.args.rate_limit_burst),
                verifier: self.verifier.clone(),
            });
            router = router.layer(from_fn_with_state(limit, rate_limit));
        }
        if let Some(cors) = &self.cors {
            router = router.layer(cors.clone());
        }
        router
            .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(()))
            .layer(from_fn(request_id))
    }
}

/// An API's listening socket and the edge in front of its routes, made at build time and
/// served when the service runs.
#[derive(Debug)]
pub struct Front {
    listener: Listener,
    edge: Edge,
}

/// Why an API's front cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Edge(#[from] EdgeConfigError),
}

impl Front {
    /// Binds `addr` (port 0 picks a free one) behind the edge `args` describe.
    pub async fn bind(addr: &str, args: &EdgeArgs, verifier: Verifier) -> Result<Self, FrontError> {
        let edge = Edge::new(args, verifier)?;
        Ok(Self {
            listener: Listener::bind(addr).await?,
            edge,
        })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Serves `router` behind the edge until `shutdown` (see [`server::serve`]), timing every
    /// answer, the edge's own refusals included, into `metrics`.
    pub async fn serve(
        self,
        router: Router,
        metrics: &Registry,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = metrics.time_requests(self.edge.wrap(router));
        let timeout = self.edge.header_read_timeout();
        metrics
            .kept_up_while(server::serve(self.listener, router, timeout, shutdown))
            .await
    }
}

/// The span every log line of a request is written in. At `info`, so that it is on whenever
/// the request's own log lines are. It continues the caller's trace when traces are exported.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    let span =
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id);
    if crate::telemetry::is_exported() {
        trace_context(request.headers()).parent(&span);
    }
    span
}

/// The W3C trace context a request carries, as it came.
pub fn trace_context(headers: &axum::http::HeaderMap) -> TraceContext {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    TraceContext {
        traceparent: text(TRACEPARENT),
        tracestate: text(TRACESTATE),
    }
}

/// Sets the request id on the request (for the span and the handlers) and on the answer.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|id| is_sane_request_id(id))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&Uuid::new_v4().to_string()).expect("a UUID is a header value"));
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// Short, and only characters that are safe in any log format.
fn is_sane_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
}

fn is_operational(request: &Request) -> bool {
    OPERATIONAL_PATHS.contains(&request.uri().path())
}

#[derive(Debug)]
struct RateLimit {
    limiter: RateLimiter,
    verifier: Verifier,
}

impl RateLimit {
    /// Who sends `request`; its token's verdict stays with it for the scope check.
    fn caller(&self, request: &mut Request) -> Caller {
        if let Ok(claims) = authenticate(&self.verifier, request) {
            return Caller::Subject(claims.sub);
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(Caller::Unknown, |ConnectInfo(peer)| Caller::Address(peer.ip()))
    }
}

async fn rate_limit(State(limit): State<Arc<RateLimit>>, mut request: Request, next: Next) -> Response {
    if is_operational(&request) {
        return next.run(request).await;
    }
    let standing = limit.limiter.take(limit.caller(&mut request), Instant::now());
    let mut response = if standing.allowed {
        next.run(request).await
    } else {
        tracing::debug!("rate limit reached");
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests")
            .detail("this caller has used up its request rate; retry after the time in Retry-After")
            .retry_after(standing.retry_after_seconds())
            .into_response()
    };
    standing.write_headers(response.headers_mut());
    response
}

async fn shed_load(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    if is_operational(&request) {
        return next.run(request).await;
    }
    match slots.try_acquire_owned() {
        Ok(_slot) => next.run(request).await,
        Err(_) => {
            tracing::debug!("overloaded: request shed");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded")
                .detail("too many requests in progress; retry after the time in Retry-After")
                .retry_after(1)
                .into_response()
        }
    }
}

async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::info!(timeout_ms = limit.as_millis() as u64, "request timed out");
            let detail = format!(
                "the request did not complete within {} ms; a command may still take effect, so retry it with the same Idempotency-Key",
                limit.as_millis()
            );
            let mut response = Problem::new(StatusCode::REQUEST_TIMEOUT, "request-timeout", "Request timeout")
                .detail(detail)
                .into_response();
            // The body may be half read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

#[cfg(test)]
mod tests;
