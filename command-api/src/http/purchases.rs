//! `POST /api/v1/purchases` (the purchase processor's request, as it is) and
//! `POST /api/v1/purchases/{id}/refunds`.
//!
//! Who may: a user (`purchases:write`) requests purchases for itself; staff refund
//! (`purchases:refund`), and with `purchases:write` too may request purchases for any user.
//!
//! The card number and CVC are read here and nowhere else: the edge turns the card into its
//! masked form, a keyed fingerprint and a gateway token, and drops the CVC. Errors about card
//! fields never echo what was sent.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Duration, SubsecRound, Timelike, Utc};
use domain::card::{CardCvc, CardExpiry, CardNumber, MaskedCard};
use domain::money::{Currency, Money};
use domain::purchase::{self, PaymentMethod, RefundPurchase, RefundReason, RequestPurchase, Username};
use domain::validation::{bounded_lines, bounded_text};
use domain::{Command, FieldProblem, InvalidField};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use service_kit::auth::{require_scope, Claims, Verifier, PURCHASES_REFUND, PURCHASES_WRITE};
use utoipa::openapi::schema::Schema;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::command::{digested, CommandRequest, IdempotencyKey};
use super::extract::{Json, Path};
use super::fields::{acting_for, decimal, optional_uuid, text};
use super::openapi::{
    BodyCommandProblems, GatewayRefused, PurchaseConflict, PurchaseNotFound, PurchaseUnavailable, RefundConflict,
    Unavailable,
};
use super::{Accepted, ApiContext, ApiError};
use crate::bus::CommandBus;
use crate::payments::{CardDetails, Fingerprinter};

/// How far in the future a client's `transaction_date` may be: clocks drift, not by hours.
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const MAX_HOLDER_NAME_CHARS: usize = 200;
const MAX_BILLING_ADDRESS_CHARS: usize = 500;

pub(super) fn router<B: CommandBus>(verifier: &Verifier, fingerprints: &Fingerprinter) -> Router<ApiContext<B>> {
    let request = Router::new().route("/api/v1/purchases", post(request_purchase::<B>));
    let request = digested(request, fingerprints).route_layer(require_scope(verifier.clone(), PURCHASES_WRITE));
    let refund = Router::new().route("/api/v1/purchases/{purchase_id}/refunds", post(refund_purchase::<B>));
    let refund = digested(refund, fingerprints).route_layer(require_scope(verifier.clone(), PURCHASES_REFUND));
    request.merge(refund)
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(request_purchase, refund_purchase))]
pub(super) struct PurchasesApi;

/// The currencies the domain knows.
fn currency_schema() -> Schema {
    service_kit::openapi::string_enum(Currency::all().map(Currency::code), false)
}

/// The payment methods the domain knows.
fn payment_method_schema() -> Schema {
    service_kit::openapi::string_enum(PaymentMethod::ALL.map(PaymentMethod::as_str), false)
}

/// The seed's body. Fields are loosely typed here so that each is checked by name, and so that
/// a card number sent as a JSON number is refused without being quoted back. `Debug` is by
/// hand, never derived, as these fields hold the raw card.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PurchaseRequest {
    /// Chosen by the server when absent: derived from the `Idempotency-Key` when one is sent.
    #[schema(schema_with = service_kit::openapi::optional_uuid)]
    purchase_id: Option<Value>,
    /// The order this purchase pays.
    #[schema(schema_with = service_kit::openapi::optional_uuid)]
    order_id: Option<Value>,
    /// The buyer: the caller when absent; another user only with `purchases:refund`.
    #[schema(schema_with = service_kit::openapi::optional_uuid)]
    user_id: Option<Value>,
    /// Trimmed, 1 to 100 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    username: Option<Value>,
    /// A JSON number above 0 with no more decimals than the currency has, at most 1,000,000.
    #[schema(value_type = f64, required = true, exclusive_minimum = 0, maximum = 1000000)]
    amount: Option<Box<RawValue>>,
    /// An ISO 4217 code.
    #[schema(schema_with = currency_schema, required = true)]
    currency: Option<Value>,
    #[schema(schema_with = payment_method_schema, required = true)]
    payment_method: Option<Value>,
    /// Trimmed, 1 to 200 characters; goes to the gateway only.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    card_holder_name: Option<Value>,
    /// 12 to 19 digits (spaces allowed) passing the Luhn check. Never stored, logged or echoed.
    #[schema(value_type = String, required = true, pattern = "^[0-9 ]{12,23}$", example = "4242424242424242")]
    card_number: Option<Value>,
    /// `MM/YY`, not before the month of `transaction_date`.
    #[schema(value_type = String, required = true, pattern = "^(0[1-9]|1[0-2])/[0-9]{2}$", example = "12/30")]
    card_expiry: Option<Value>,
    /// 3 or 4 digits. Never stored, logged or echoed.
    #[schema(value_type = String, required = true, pattern = "^[0-9]{3,4}$", example = "123")]
    card_cvc: Option<Value>,
    /// At most 500 characters; goes to the gateway only.
    #[schema(value_type = Option<String>, max_length = 500)]
    billing_address: Option<Value>,
    /// RFC 3339, at most 5 minutes in the future.
    #[schema(value_type = chrono::DateTime<Utc>, required = true)]
    transaction_date: Option<Value>,
}

/// Names the fields present, never their values.
impl std::fmt::Debug for PurchaseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |field: bool| if field { "<given>" } else { "<absent>" };
        f.debug_struct("PurchaseRequest")
            .field("purchase_id", &self.purchase_id)
            .field("order_id", &self.order_id)
            .field("user_id", &self.user_id)
            .field("card_holder_name", &present(self.card_holder_name.is_some()))
            .field("card_number", &present(self.card_number.is_some()))
            .field("card_expiry", &present(self.card_expiry.is_some()))
            .field("card_cvc", &present(self.card_cvc.is_some()))
            .field("billing_address", &present(self.billing_address.is_some()))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct PurchaseAccepted {
    #[schema(value_type = String, example = "accepted")]
    status: &'static str,
    purchase_id: Uuid,
    /// Pass to the query API to read your own write.
    consistency_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    /// A JSON number above 0 in the purchase's currency, at most what is still refundable.
    #[schema(value_type = f64, required = true, exclusive_minimum = 0)]
    amount: Option<Box<RawValue>>,
    /// 1 to 500 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500)]
    reason: Option<Value>,
}

/// The refund is accepted and its amount set aside; the payment reactor asks the gateway for it and
/// then records it, and the purchase shows it refunded.
#[derive(Debug, Serialize, ToSchema)]
struct RefundAccepted {
    #[schema(value_type = String, example = "refund_requested")]
    status: &'static str,
    purchase_id: Uuid,
    refund_id: Uuid,
    /// Pass to the query API to read your own write.
    consistency_token: String,
}

/// `transaction_date`: an RFC 3339 date-time, no further ahead than the clock skew allowed, kept
/// to the microsecond as PostgreSQL keeps it, so that it reads back as it was accepted. A leap
/// second, which PostgreSQL would move to the next minute, is refused.
fn transaction_date(value: Option<Value>, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidField> {
    let wrong = |expected| InvalidField::new("transaction_date", FieldProblem::WrongType { expected });
    let date = DateTime::parse_from_rfc3339(&text("transaction_date", value)?)
        .map_err(|_| wrong("an RFC 3339 date-time"))?
        .with_timezone(&Utc);
    if date.nanosecond() >= 1_000_000_000 {
        return Err(wrong("an RFC 3339 date-time without a leap second"));
    }
    if date > now + MAX_CLOCK_SKEW {
        return Err(InvalidField::new("transaction_date", FieldProblem::InTheFuture));
    }
    Ok(date.trunc_subsecs(6))
}

/// Request a card purchase; the payment reactor then authorizes or declines it.
#[utoipa::path(
    post,
    path = "/api/v1/purchases",
    tag = "purchases",
    request_body = PurchaseRequest,
    params(IdempotencyKey),
    security(("bearer" = ["purchases:write"])),
    responses(
        (status = 202, description = "The `PurchaseRequested` event is on the log.", body = PurchaseAccepted, links(
            ("refund_purchase" = (operation_id = "refund_purchase", parameters(("purchase_id" = "$response.body#/purchase_id")))),
        )),
        BodyCommandProblems,
        (status = 409, response = PurchaseConflict),
        (status = 502, response = GatewayRefused),
        (status = 503, response = PurchaseUnavailable),
    )
)]
#[tracing::instrument(skip_all, fields(purchase_id, command_id))]
async fn request_purchase<B: CommandBus>(
    State(context): State<ApiContext<B>>,
    meta: CommandRequest,
    claims: Claims,
    Json(request): Json<PurchaseRequest>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let purchase_id = optional_uuid("purchase_id", request.purchase_id)?;
    let order_id = optional_uuid("order_id", request.order_id)?;
    // Another user's purchase only with `purchases:refund`, the scope that acts on other users'
    // purchases.
    let user_id = acting_for(&claims, request.user_id, PURCHASES_REFUND)?;
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
        bounded_lines(
            "billing_address",
            &text("billing_address", Some(address))?,
            MAX_BILLING_ADDRESS_CHARS,
        )?;
    }
    let transaction_date = transaction_date(request.transaction_date, now)?;
    // The card is charged now: an earlier transaction date does not make an expired card good.
    if expiry.is_before_month_of(transaction_date.max(now)) {
        return Err(InvalidField::new("card_expiry", FieldProblem::Expired).into());
    }

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

    let command = purchase::Command::RequestPurchase(RequestPurchase {
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
    });
    accept(&context, &meta, command, now, |accepted| PurchaseAccepted {
        status: "accepted",
        purchase_id: accepted.aggregate_id,
        consistency_token: accepted.consistency_token,
    })
    .await
}

/// Refund an authorized purchase, in whole or in part (staff). Accepted once the refund is
/// requested on the log; the payment gateway pays it back shortly after.
#[utoipa::path(
    post,
    path = "/api/v1/purchases/{purchase_id}/refunds",
    tag = "purchases",
    request_body = RefundRequest,
    params(
        ("purchase_id" = Uuid, Path, description = "The purchase's id"),
        IdempotencyKey,
    ),
    security(("bearer" = ["purchases:refund"])),
    responses(
        (status = 202, description = "The `PurchaseRefundRequested` event is on the log: the amount is set aside, and the payment reactor has the gateway pay it back, then records `PurchaseRefunded`.", body = RefundAccepted),
        BodyCommandProblems,
        (status = 404, response = PurchaseNotFound),
        (status = 409, response = RefundConflict),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(%purchase_id, command_id))]
async fn refund_purchase<B: CommandBus>(
    State(context): State<ApiContext<B>>,
    Path(purchase_id): Path<String>,
    meta: CommandRequest,
    Json(request): Json<RefundRequest>,
) -> Result<Response, ApiError> {
    let purchase_id: Uuid = purchase_id
        .parse()
        .map_err(|_| InvalidField::new("purchase_id", FieldProblem::WrongType { expected: "a UUID" }))?;
    let amount = decimal("amount", request.amount)?;
    let reason = RefundReason::parse(&text("reason", request.reason)?)?;
    tracing::Span::current().record("command_id", tracing::field::display(meta.command_id));
    let refund_id = meta.new_id(None);
    let now = Utc::now();
    let command = purchase::Command::RefundPurchase(RefundPurchase {
        purchase_id,
        refund_id,
        amount,
        reason,
        requested_at: now,
    });
    accept(&context, &meta, command, now, |accepted| RefundAccepted {
        status: "refund_requested",
        purchase_id,
        refund_id,
        consistency_token: accepted.consistency_token,
    })
    .await
}

/// Decides `command`, sent at `now`: once accepted, a purchase is settled later by the payment
/// reactor, so the answer is a 202 with the body `answer` makes of what was accepted.
async fn accept<B: CommandBus, T: Serialize>(
    context: &ApiContext<B>,
    meta: &CommandRequest,
    command: purchase::Command,
    now: DateTime<Utc>,
    answer: impl FnOnce(Accepted) -> T,
) -> Result<Response, ApiError> {
    let accepted = context.decide(&meta.envelope(Command::Purchase(command), now)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(answer(accepted))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_date_is_kept_as_postgresql_keeps_it_or_refused() {
        let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        let date = |text: &str| transaction_date(Some(Value::from(text)), now);
        assert_eq!(
            date("2026-05-31T23:59:59.123456789+02:00").unwrap().to_rfc3339(),
            "2026-05-31T21:59:59.123456+00:00"
        );
        assert_eq!(
            date("2026-05-31T10:00:00Z").unwrap(),
            "2026-05-31T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        for refused in ["2016-12-31T23:59:60Z", "2026-06-02T12:00:00Z", "31/05/2026"] {
            let problem = date(refused).expect_err(refused);
            assert_eq!(problem.field, "transaction_date", "{refused}");
        }
    }

    #[test]
    fn debug_of_a_purchase_request_shows_no_card_data() {
        let request: PurchaseRequest = serde_json::from_value(serde_json::json!({
            "user_id": "4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8",
            "card_holder_name": "Jane Cardholder",
            "card_number": "4111111111111111",
            "card_expiry": "12/30",
            "card_cvc": "987",
            "billing_address": "1 Secret Lane",
        }))
        .expect("deserializes");
        let debug = format!("{request:?}");
        for secret in ["4111", "987", "12/30", "Jane", "Secret Lane"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("card_number: \"<given>\""), "{debug}");
        let number = CardNumber::parse("card_number", "4111111111111111").expect("valid");
        let cvc = CardCvc::parse("card_cvc", "987").expect("valid");
        let card = CardDetails {
            number: &number,
            expiry: CardExpiry::parse("card_expiry", "12/30").expect("valid"),
            cvc: &cvc,
            holder_name: "Jane Cardholder",
        };
        let debug = format!("{card:?}");
        assert!(
            !debug.contains("411111111111") && !debug.contains("987") && !debug.contains("Jane"),
            "{debug}"
        );
    }
}
