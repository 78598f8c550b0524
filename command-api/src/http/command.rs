//! What every command request carries besides its body: its caller, ids derived from the
//! `Idempotency-Key`, a digest of the request, and the caller's trace context.
//!
//! An `Idempotency-Key` is scoped by (caller, route, key): the token's `sub`, the method and
//! path, and the key name the command id (and the id of a created aggregate) as UUID v5. The
//! same key from another caller or on another route is another command.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::Command;
use service_kit::auth::Claims;
use service_kit::edge;
use service_kit::extract::BodyRejection;
use service_kit::kafka::Envelope;
use service_kit::telemetry::TraceContext;
use uuid::Uuid;

use super::{ApiContext, ApiError, BODY_LIMIT};
use crate::bus::CommandBus;
use crate::payments::Fingerprinter;

/// Namespaces turning an `Idempotency-Key` into ids, so a retry lands on the same aggregate
/// with the same command id and the decider recognises it.
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_636d_6401);
const AGGREGATE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_6f72_6401);
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The keyed digest of a command request's route and body, computed by [`digest_request`]
/// while the body is still unread.
#[derive(Debug, Clone)]
struct RequestDigest(String);

/// The `Idempotency-Key` header as every command route's OpenAPI description names it; the
/// handlers read it through [`CommandRequest`].
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "describes the header for the document; never built")]
pub(super) struct IdempotencyKey {
    /// 1 to 200 characters: a retry with the same key returns the first answer and writes nothing new
    #[param(rename = "Idempotency-Key", min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

/// The ids and trace context of one command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandRequest {
    /// The `Idempotency-Key` scoped by caller and route, when the request has one.
    scoped_key: Option<String>,
    pub(super) command_id: Uuid,
    request_digest: Option<String>,
    /// Written on the command as it is while traces are not exported (see [`TraceContext::to_send`]).
    trace: TraceContext,
}

/// A command ready for the log, with the digest of the request behind it.
#[derive(Debug)]
pub(super) struct Submission {
    pub(super) envelope: Envelope<Command>,
    pub(super) request_digest: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = Claims::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let key = idempotency_key(&parts.headers).map_err(IntoResponse::into_response)?;
        let digest = parts.extensions.get::<RequestDigest>().map(|digest| digest.0.clone());
        Ok(Self::new(
            &claims.sub,
            &route(&parts.method, parts.uri.path()),
            key.as_deref(),
            digest,
            trace_context(&parts.headers),
        ))
    }
}

impl CommandRequest {
    fn new(subject: &str, route: &str, key: Option<&str>, request_digest: Option<String>, trace: TraceContext) -> Self {
        // Length prefixes keep the parts apart whatever characters they hold.
        let scoped_key = key.map(|key| format!("{}:{subject}{}:{route}{key}", subject.len(), route.len()));
        let command_id = match &scoped_key {
            Some(key) => Uuid::new_v5(&COMMAND_ID_NAMESPACE, key.as_bytes()),
            None => Uuid::new_v4(),
        };
        Self {
            request_digest: scoped_key.as_ref().and(request_digest),
            scoped_key,
            command_id,
            trace,
        }
    }

    /// The id of the aggregate the command creates: the client's, else derived from the
    /// idempotency key, else fresh.
    pub(super) fn new_id(&self, given: Option<Uuid>) -> Uuid {
        given.unwrap_or_else(|| match &self.scoped_key {
            Some(key) => Uuid::new_v5(&AGGREGATE_ID_NAMESPACE, key.as_bytes()),
            None => Uuid::new_v4(),
        })
    }

    /// Wraps `command` for the log, accepted at `now`.
    pub(super) fn envelope(&self, command: Command, now: DateTime<Utc>) -> Submission {
        Submission {
            envelope: Envelope {
                id: self.command_id,
                time: now,
                sequence: None,
                causation_id: None,
                correlation_id: self.command_id,
                trace: self.trace.clone(),
                message: command,
            },
            request_digest: self.request_digest.clone(),
        }
    }
}

/// `routes` with [`digest_request`] in front of their handlers; the scope check goes around it,
/// so only an authorised request has its body read here.
pub(super) fn digested<B: CommandBus>(
    routes: Router<ApiContext<B>>,
    fingerprints: &Fingerprinter,
) -> Router<ApiContext<B>> {
    routes.route_layer(axum::middleware::from_fn_with_state(
        fingerprints.clone(),
        digest_request,
    ))
}

/// Middleware for command routes: digests the route and body of a request that carries an
/// `Idempotency-Key`, before the handler consumes the body, so the decider can tell a retry
/// from another request under the same key. The digest is keyed, as a body may hold a card.
async fn digest_request(State(fingerprints): State<Fingerprinter>, request: Request, next: Next) -> Response {
    if !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        // Over the limit; a body broken off mid-way has no client left to read the answer.
        Err(_) => return ApiError::from(BodyRejection::TooLarge { limit: BODY_LIMIT }).into_response(),
    };
    let digest = fingerprints.of_request(&route(&parts.method, parts.uri.path()), &bytes);
    parts.extensions.insert(RequestDigest(digest));
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The method and path of a request. Ids in our paths are UUIDs, which parse in either case, so
/// the path is lower-cased: one resource, one route.
fn route(method: &Method, path: &str) -> String {
    format!("{method} {}", path.to_ascii_lowercase())
}

/// The `Idempotency-Key` header: printable characters only (no control characters, tab
/// included), 1 to 200 of them once trimmed.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::InvalidHeader {
        header: "Idempotency-Key",
        detail: detail.to_owned(),
    };
    let key = std::str::from_utf8(value.as_bytes()).map_err(|_| invalid("must be UTF-8 text"))?;
    if key.chars().any(char::is_control) {
        return Err(invalid("must hold printable characters only, no control characters"));
    }
    let key = key.trim();
    if !(1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.chars().count()) {
        return Err(invalid("must hold 1 to 200 characters"));
    }
    Ok(Some(key.to_owned()))
}

/// The caller's W3C trace context when it sent a well-formed one, else a new trace.
fn trace_context(headers: &HeaderMap) -> TraceContext {
    let given = edge::trace_context(headers);
    if given.traceparent.as_deref().is_some_and(is_traceparent) {
        return given;
    }
    let trace = Uuid::new_v4().simple().to_string();
    let span = &Uuid::new_v4().simple().to_string()[..16];
    TraceContext {
        traceparent: Some(format!("00-{trace}-{span}-01")),
        tracestate: None,
    }
}

fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4 && hex(parts[0], 2) && hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(subject: &str, route: &str, key: Option<&str>) -> CommandRequest {
        CommandRequest::new(subject, route, key, Some("digest".to_owned()), TraceContext::default())
    }

    #[test]
    fn an_idempotency_key_always_names_the_same_command_and_aggregate() {
        let first = request("alice", "POST /api/v1/orders", Some("key-1"));
        let again = request("alice", "POST /api/v1/orders", Some("key-1"));
        assert_eq!(first.command_id, again.command_id);
        assert_eq!(first.new_id(None), again.new_id(None));
        assert_ne!(first.command_id, first.new_id(None));
        let other_key = request("alice", "POST /api/v1/orders", Some("key-2"));
        assert_ne!(first.command_id, other_key.command_id);
    }

    #[test]
    fn a_key_is_scoped_by_caller_and_route() {
        let first = request("alice", "POST /api/v1/orders", Some("key-1"));
        let other_route = request("alice", "POST /api/v1/purchases", Some("key-1"));
        assert_ne!(first.command_id, other_route.command_id);
        let other_caller = request("bob", "POST /api/v1/orders", Some("key-1"));
        assert_ne!(first.command_id, other_caller.command_id);
        assert_ne!(first.new_id(None), other_caller.new_id(None));
        // Moving characters between the parts names another command.
        assert_ne!(
            request("ab", "c", Some("k")).command_id,
            request("a", "bc", Some("k")).command_id
        );
    }

    #[test]
    fn a_given_id_wins_over_the_derived_one_and_only_keyed_requests_carry_a_digest() {
        let given = Uuid::from_u128(42);
        let keyed = request("alice", "POST /api/v1/orders", Some("k"));
        assert_eq!(keyed.new_id(Some(given)), given);
        assert_eq!(keyed.request_digest.as_deref(), Some("digest"));
        let plain = request("alice", "POST /api/v1/orders", None);
        assert_eq!(plain.new_id(Some(given)), given);
        assert_ne!(
            plain.new_id(None),
            plain.new_id(None),
            "without a key every id is fresh"
        );
        assert_eq!(plain.request_digest, None);
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        let key = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_bytes(value).unwrap());
            idempotency_key(&headers)
        };
        assert_eq!(key(b" checkout 42 ").unwrap().as_deref(), Some("checkout 42"));
        assert_eq!(key("clé-1".as_bytes()).unwrap().as_deref(), Some("clé-1"));
        assert_eq!(key(&[b'k'; 200]).unwrap().map(|k| k.len()), Some(200));
        for bad in [&b"a\tb"[..], b"   ", &[b'k'; 201], b"\xff\xfe"] {
            assert!(
                matches!(key(bad), Err(ApiError::InvalidHeader { .. })),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn routes_ignore_the_case_of_ids() {
        assert_eq!(
            route(&Method::POST, "/api/v1/orders/ABC/confirm"),
            route(&Method::POST, "/api/v1/orders/abc/confirm")
        );
        assert_ne!(
            route(&Method::POST, "/api/v1/orders"),
            route(&Method::PUT, "/api/v1/orders")
        );
    }

    #[test]
    fn traceparent_is_kept_only_when_well_formed() {
        let mut headers = HeaderMap::new();
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(valid));
        headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let kept = trace_context(&headers);
        assert_eq!(kept.traceparent.as_deref(), Some(valid));
        assert_eq!(kept.tracestate.as_deref(), Some("vendor=1"));
        headers.insert("traceparent", HeaderValue::from_static("garbage"));
        let fresh = trace_context(&headers);
        assert!(fresh.traceparent.as_deref().is_some_and(is_traceparent));
        assert_eq!(fresh.tracestate, None, "a state belongs to the trace it came with");
    }
}
