//! `POST /api/v1/orders`: the seed's order endpoint on the event-sourced core.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::order::{self, OrderName, OrderNote, PlaceOrder};
use domain::{Command, FieldProblem, InvalidField};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::CommandRequest;
use super::extract::Json;
use super::{ApiContext, ApiError};
use crate::outcome::WrittenEvent;

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/api/v1/orders", post(place_order))
}

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

#[tracing::instrument(skip_all, fields(order_id, command_id))]
async fn place_order(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let name = request.name.ok_or(InvalidField::new("name", FieldProblem::Required))?;
    let name = OrderName::parse(&name)?;
    let note = request.note.as_deref().map(OrderNote::parse).transpose()?;
    let meta = CommandRequest::from_headers(&headers, "orders")?;
    let order_id = meta.new_id(request.order_id);
    tracing::Span::current()
        .record("order_id", tracing::field::display(order_id))
        .record("command_id", tracing::field::display(meta.command_id));

    let now = Utc::now();
    let command = Command::Order(order::Command::PlaceOrder(PlaceOrder {
        order_id,
        name,
        note,
        placed_at: now,
    }));
    let accepted = context.decide(&meta.envelope(command, now)).await?;
    let body = OrderAccepted {
        status: "success",
        order_id: accepted.aggregate_id,
        consistency_token: accepted.consistency_token,
        events: accepted.events,
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    let location = format!("/api/v1/orders/{}", accepted.aggregate_id);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
