//! `POST /api/v1/orders`: the seed's order endpoint on the event-sourced core.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::order::{Command, OrderName, OrderNote, PlaceOrder};
use domain::{FieldProblem, InvalidField};
use serde::{Deserialize, Serialize};
use service_kit::kafka::Envelope;
use uuid::Uuid;

use super::extract::Json;
use super::{ApiContext, ApiError};
use crate::outcome::{Verdict, WrittenEvent};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/api/v1/orders", post(place_order))
}

/// Namespaces turning an `Idempotency-Key` into ids, so a retry lands on the same aggregate
/// with the same command id and the decider recognises it.
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_636d_6401);
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_6f72_6401);
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// The seed's body; every field optional here so that a missing one is reported by name.
#[derive(Debug, Deserialize)]
struct PlaceOrderRequest {
    name: Option<String>,
    note: Option<String>,
    order_id: Option<Uuid>,
}

#[derive(Debug, Serialize)]
struct OrderAccepted {
    status: &'static str,
    order_id: Uuid,
    consistency_token: String,
    events: Vec<WrittenEvent>,
}

/// Ids for one request: derived from the idempotency key when there is one, fresh otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestIds {
    command_id: Uuid,
    order_id: Uuid,
}

impl RequestIds {
    fn new(idempotency_key: Option<&str>, order_id: Option<Uuid>) -> Self {
        match idempotency_key {
            Some(key) => Self {
                command_id: Uuid::new_v5(&COMMAND_ID_NAMESPACE, key.as_bytes()),
                order_id: order_id.unwrap_or_else(|| Uuid::new_v5(&ORDER_ID_NAMESPACE, key.as_bytes())),
            },
            None => Self {
                command_id: Uuid::new_v4(),
                order_id: order_id.unwrap_or_else(Uuid::new_v4),
            },
        }
    }
}

#[tracing::instrument(skip_all, fields(order_id, command_id))]
async fn place_order(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let name = request.name.ok_or(InvalidField::new("name", FieldProblem::Required))?;
    let name = OrderName::parse(&name)?;
    let note = request.note.as_deref().map(OrderNote::parse).transpose()?;
    let idempotency_key = idempotency_key(&headers)?;
    let ids = RequestIds::new(idempotency_key.as_deref(), request.order_id);
    tracing::Span::current()
        .record("order_id", tracing::field::display(ids.order_id))
        .record("command_id", tracing::field::display(ids.command_id));

    let now = Utc::now();
    let command = Envelope {
        id: ids.command_id,
        time: now,
        sequence: None,
        causation_id: None,
        correlation_id: ids.command_id,
        traceparent: Some(traceparent(&headers)),
        message: Command::PlaceOrder(PlaceOrder {
            order_id: ids.order_id,
            name,
            note,
            placed_at: now,
        }),
    };
    let outcome = context.bus.submit(&command).await?;
    match outcome.verdict {
        Verdict::Rejected { rejection } => Err(rejection.into()),
        Verdict::Accepted {
            events,
            consistency_token,
        } => {
            let location = format!("/api/v1/orders/{}", outcome.aggregate_id);
            let body = OrderAccepted {
                status: "success",
                order_id: outcome.aggregate_id,
                consistency_token,
                events,
            };
            let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::InvalidHeader {
        header: "Idempotency-Key",
        detail: detail.to_owned(),
    };
    let key = value.to_str().map_err(|_| invalid("must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(invalid("must hold 1 to 200 characters"));
    }
    Ok(Some(key.to_owned()))
}

/// The caller's W3C trace context when it sent a well-formed one, else a new trace.
fn traceparent(headers: &HeaderMap) -> String {
    let given = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_traceparent(value));
    match given {
        Some(value) => value.to_owned(),
        None => {
            let trace = Uuid::new_v4().simple().to_string();
            let span = &Uuid::new_v4().simple().to_string()[..16];
            format!("00-{trace}-{span}-01")
        }
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

    #[test]
    fn an_idempotency_key_always_names_the_same_command_and_order() {
        let first = RequestIds::new(Some("key-1"), None);
        assert_eq!(first, RequestIds::new(Some("key-1"), None));
        assert_ne!(first, RequestIds::new(Some("key-2"), None));
        assert_ne!(first.command_id, first.order_id);
    }

    #[test]
    fn a_given_order_id_wins_over_the_derived_one() {
        let order_id = Uuid::from_u128(42);
        assert_eq!(RequestIds::new(Some("k"), Some(order_id)).order_id, order_id);
        assert_eq!(RequestIds::new(None, Some(order_id)).order_id, order_id);
    }

    #[test]
    fn traceparent_is_kept_only_when_well_formed() {
        let mut headers = HeaderMap::new();
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(valid));
        assert_eq!(traceparent(&headers), valid);
        headers.insert("traceparent", HeaderValue::from_static("garbage"));
        assert!(is_traceparent(&traceparent(&headers)));
    }
}
