//! `POST /api/v1/purchases` (the purchase processor's request, as it is) and
//! `POST /api/v1/purchases/{id}/refunds`.
//!
//! Who may: a user (`purchases:write`) requests purchases for itself; staff refund
//! (`purchases:refund`), and with `purchases:write` too may request purchases for any user.
//!
//! The card number and CVC are read here and nowhere else: the edge turns the card into its
//! masked form, a keyed fingerprint and a gateway token, and drops the CVC. Errors about card
//! fields never echo what was sent.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use domain::card::{CardCvc, CardExpiry, CardNumber, MaskedCard};
use domain::money::{Currency, Money};
use domain::purchase::{self, PaymentMethod, RefundPurchase, RefundReason, RequestPurchase, Username};
use domain::validation::bounded_text;
use domain::{Command, FieldProblem, InvalidField};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use service_kit::auth::{require_scope, Claims, Verifier, PURCHASES_REFUND, PURCHASES_WRITE};
use uuid::Uuid;

use super::command::CommandRequest;
use super::extract::Json;
use super::fields::{decimal, optional_uuid, text};
use super::{ApiContext, ApiError};
use crate::payments::CardDetails;

/// How far in the future a client's `transaction_date` may be: clocks drift, not by hours.
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const MAX_HOLDER_NAME_CHARS: usize = 200;
const MAX_BILLING_ADDRESS_CHARS: usize = 500;

pub(super) fn router(verifier: &Verifier) -> Router<ApiContext> {
    let request = Router::new()
        .route("/api/v1/purchases", post(request_purchase))
        .route_layer(require_scope(verifier.clone(), PURCHASES_WRITE));
    let refund = Router::new()
        .route("/api/v1/purchases/{purchase_id}/refunds", post(refund_purchase))
        .route_layer(require_scope(verifier.clone(), PURCHASES_REFUND));
    request.merge(refund)
}

/// The user a purchase is for: the caller when `user_id` is absent; another user only with
/// `purchases:refund`, the scope that acts on other users' purchases.
fn payer(claims: &Claims, user_id: Option<Value>) -> Result<Uuid, ApiError> {
    let user_id = optional_uuid("user_id", user_id)?.unwrap_or_else(|| claims.user_id());
    if claims.may_act_for(user_id, PURCHASES_REFUND) {
        Ok(user_id)
    } else {
        Err(ApiError::ForeignUser {
            field: "user_id",
            scope: PURCHASES_REFUND,
        })
    }
}

/// The seed's body. Fields are loosely typed here so that each is checked by name, and so that
/// a card number sent as a JSON number is refused without being quoted back.
#[derive(Debug, Deserialize)]
struct PurchaseRequest {
    purchase_id: Option<Value>,
    order_id: Option<Value>,
    user_id: Option<Value>,
    username: Option<Value>,
    amount: Option<Box<RawValue>>,
    currency: Option<Value>,
    payment_method: Option<Value>,
    card_holder_name: Option<Value>,
    card_number: Option<Value>,
    card_expiry: Option<Value>,
    card_cvc: Option<Value>,
    billing_address: Option<Value>,
    transaction_date: Option<Value>,
}

#[derive(Debug, Serialize)]
struct PurchaseAccepted {
    status: &'static str,
    purchase_id: Uuid,
    consistency_token: String,
}

#[derive(Debug, Deserialize)]
struct RefundRequest {
    amount: Option<Box<RawValue>>,
    reason: Option<Value>,
}

#[derive(Debug, Serialize)]
struct RefundAccepted {
    status: &'static str,
    purchase_id: Uuid,
    refund_id: Uuid,
    consistency_token: String,
}

fn transaction_date(value: Option<Value>, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidField> {
    let date = DateTime::parse_from_rfc3339(&text("transaction_date", value)?)
        .map_err(|_| {
            InvalidField::new(
                "transaction_date",
                FieldProblem::WrongType {
                    expected: "an RFC 3339 date-time",
                },
            )
        })?
        .with_timezone(&Utc);
    if date > now + MAX_CLOCK_SKEW {
        return Err(InvalidField::new("transaction_date", FieldProblem::InTheFuture));
    }
    Ok(date)
}

#[tracing::instrument(skip_all, fields(purchase_id, command_id))]
async fn request_purchase(
    State(context): State<ApiContext>,
    claims: Claims,
    headers: HeaderMap,
    Json(request): Json<PurchaseRequest>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let purchase_id = optional_uuid("purchase_id", request.purchase_id)?;
    let order_id = optional_uuid("order_id", request.order_id)?;
    let user_id = payer(&claims, request.user_id)?;
    let username = Username::parse(&text("username", request.username)?)?;
    let currency = Currency::parse("currency", &text("currency", request.currency)?)?;
    let amount = Money::from_decimal("amount", decimal("amount", request.amount)?, currency)?;
    let payment_method = PaymentMethod::parse("payment_method", &text("payment_method", request.payment_method)?)?;
    let holder_name = bounded_text(
        "card_holder_name",
        &text("card_holder_name", request.card_holder_name)?,
        MAX_HOLDER_NAME_CHARS,
    )?;
    let number = CardNumber::parse("card_number", &text("card_number", request.card_number)?)?;
    let expiry = CardExpiry::parse("card_expiry", &text("card_expiry", request.card_expiry)?)?;
    let cvc = CardCvc::parse("card_cvc", &text("card_cvc", request.card_cvc)?)?;
    if let Some(address) = request.billing_address.filter(|v| !v.is_null()) {
        bounded_text(
            "billing_address",
            &text("billing_address", Some(address))?,
            MAX_BILLING_ADDRESS_CHARS,
        )?;
    }
    let transaction_date = transaction_date(request.transaction_date, now)?;
    if expiry.is_before_month_of(transaction_date) {
        return Err(InvalidField::new("card_expiry", FieldProblem::Expired).into());
    }

    let meta = CommandRequest::from_headers(&headers, "purchases")?;
    let purchase_id = meta.new_id(purchase_id);
    tracing::Span::current()
        .record("purchase_id", tracing::field::display(purchase_id))
        .record("command_id", tracing::field::display(meta.command_id));
    let card = MaskedCard::new(&number, expiry, context.fingerprints.of(&number));
    let payment_token = context
        .gateway
        .tokenize(CardDetails {
            number: &number,
            expiry,
            cvc: &cvc,
            holder_name: &holder_name,
        })
        .await?;
    drop((number, cvc));

    let command = Command::Purchase(purchase::Command::RequestPurchase(RequestPurchase {
        purchase_id,
        user_id,
        username,
        amount,
        payment_method,
        card,
        payment_token,
        order_id,
        transaction_date,
        requested_at: now,
    }));
    let accepted = context.decide(&meta.envelope(command, now)).await?;
    let body = PurchaseAccepted {
        status: "accepted",
        purchase_id: accepted.aggregate_id,
        consistency_token: accepted.consistency_token,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[tracing::instrument(skip_all, fields(%purchase_id, command_id))]
async fn refund_purchase(
    State(context): State<ApiContext>,
    Path(purchase_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<RefundRequest>,
) -> Result<Response, ApiError> {
    let purchase_id: Uuid = purchase_id
        .parse()
        .map_err(|_| InvalidField::new("purchase_id", FieldProblem::WrongType { expected: "a UUID" }))?;
    let amount = decimal("amount", request.amount)?;
    let reason = RefundReason::parse(&text("reason", request.reason)?)?;
    let meta = CommandRequest::from_headers(&headers, &format!("refunds:{purchase_id}"))?;
    tracing::Span::current().record("command_id", tracing::field::display(meta.command_id));
    let refund_id = meta.new_id(None);
    let now = Utc::now();
    let command = Command::Purchase(purchase::Command::RefundPurchase(RefundPurchase {
        purchase_id,
        refund_id,
        amount,
        reason,
        requested_at: now,
    }));
    let accepted = context.decide(&meta.envelope(command, now)).await?;
    let body = RefundAccepted {
        status: "refunded",
        purchase_id,
        refund_id,
        consistency_token: accepted.consistency_token,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
