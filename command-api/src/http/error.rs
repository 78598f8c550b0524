//! The one mapping from command-side failures to HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::money::Money;
use domain::InvalidField;
use domain::{order, product, purchase, Rejection};
use service_kit::extract::BodyRejection;
use service_kit::Problem;
use thiserror::Error;

use crate::bus::SubmitError;
use crate::catalog::CatalogError;
use crate::outcome::Refusal;
use crate::payments::GatewayError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// 400 when the body is not JSON or not a JSON object, 413 when it is larger than the edge
    /// accepts, 415 when it is not declared as JSON or is encoded.
    #[error(transparent)]
    Body(#[from] BodyRejection),
    /// 422: a field is missing, of the wrong type, or breaks a rule.
    #[error("{0}")]
    InvalidField(#[from] InvalidField),
    /// 422: a field has the wrong JSON type or format.
    #[error("`{field}`: {detail}")]
    FieldType { field: String, detail: String },
    /// 400: a header is malformed.
    #[error("header `{header}`: {detail}")]
    InvalidHeader { header: &'static str, detail: String },
    /// 403: `field` names another user than the caller, which only a token with `scope` may.
    #[error("`{field}` names another user; acting for other users needs the `{scope}` scope")]
    ForeignUser { field: &'static str, scope: &'static str },
    /// 409 (404 for a missing order or purchase, 412 for a stale version): the domain refused
    /// the command.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// 422 when the `Idempotency-Key` was first used for another request, 409 when the
    /// aggregate is quarantined, 500 when the decider could not decode the command.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// 503 with `Retry-After`: Kafka did not take the command or no verdict came in time.
    #[error(transparent)]
    Unavailable(#[from] SubmitError),
    /// 502, or 503 with `Retry-After` when worth retrying: the payment gateway failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// 409: item `index` names a product whose price is not the one sent (or not in the order's
    /// currency); `current` is the catalog's.
    #[error("item {index} ({sku}) is priced at {} {} in the catalog", current.to_decimal_string(), current.currency().code())]
    PriceChanged { index: usize, sku: String, current: Money },
    /// 503 with `Retry-After`: the catalog could not be read up to date.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // What Kafka or the payment gateway said stays in the log (see `respond`): it can name
        // hosts and internals the client has no business knowing.
        let detail = match &self {
            Self::Unavailable(SubmitError::Unavailable(_)) => "the command log is unavailable".to_owned(),
            Self::Gateway(GatewayError::Unavailable(_)) => "the payment gateway is unavailable".to_owned(),
            Self::Catalog(_) => "the catalog is not up to date yet".to_owned(),
            Self::Gateway(GatewayError::Refused(_)) => "the payment gateway refused the request".to_owned(),
            // Told exactly like a missing order, so nobody learns another user's order exists.
            Self::Rejected(Rejection::Order(order::Rejection::NotOwner { order_id })) => {
                order::Rejection::NotFound { order_id: *order_id }.to_string()
            }
            _ => self.to_string(),
        };
        let problem = match &self {
            Self::Body(rejection) => rejection.problem(),
            Self::InvalidField(invalid) => invalid_field(invalid.field),
            Self::FieldType { field, .. } => invalid_field(field.clone()),
            Self::InvalidHeader { header, .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-header", "Invalid header").field(*header)
            }
            Self::ForeignUser { field, scope } => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .field(*field)
                .extension("scope", *scope),
            Self::Rejected(rejection) => rejection_problem(rejection),
            Self::Refused(Refusal::IdempotencyKeyReused) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
            )
            .field("Idempotency-Key"),
            // 409 rather than 5xx: retrying cannot help until the aggregate's log is repaired.
            Self::Refused(Refusal::AggregateQuarantined { aggregate_id }) => Problem::new(
                StatusCode::CONFLICT,
                "aggregate-quarantined",
                "Resource quarantined: its history cannot be read",
            )
            .extension("aggregate_id", aggregate_id.to_string()),
            Self::Refused(Refusal::Undecodable) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "command-undecodable",
                "The command could not be decoded by the decider",
            ),
            Self::Unavailable(SubmitError::Unavailable(_)) => {
                unavailable("log-unavailable", "Command log unavailable", 1)
            }
            Self::Unavailable(SubmitError::OutcomeTimeout(_)) => unavailable(
                "verdict-pending",
                "Command written, verdict not yet known; retry with the same Idempotency-Key",
                1,
            ),
            Self::Gateway(GatewayError::Unavailable(_)) => {
                unavailable("gateway-unavailable", "Payment gateway unavailable", 2)
            }
            Self::PriceChanged { index, sku, current } => Problem::new(
                StatusCode::CONFLICT,
                "price-changed",
                "The catalog price is not the one sent",
            )
            .field(format!("items[{index}].unit_price"))
            .extension("sku", sku.clone())
            .extension("current_price", current.to_decimal_string())
            .extension("currency", current.currency().code()),
            Self::Catalog(_) => unavailable("catalog-unavailable", "Catalog not up to date", 1),
            Self::Gateway(GatewayError::Refused(_)) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "gateway-refused",
                "Payment gateway refused the card",
            ),
        };
        service_kit::problem::respond(problem.detail(detail), &self)
    }
}

/// 422 naming the request `field` at fault.
fn invalid_field(field: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field").field(field)
}

/// 503: worth retrying after `seconds`.
fn unavailable(slug: &str, title: &str, seconds: u64) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, slug, title).retry_after(seconds)
}

/// Each domain rejection as the problem a client can act on.
fn rejection_problem(rejection: &Rejection) -> Problem {
    use product::Rejection as S;
    use purchase::Rejection as P;
    let conflict = |slug: &str, title: &str| Problem::new(StatusCode::CONFLICT, slug, title);
    use order::Rejection as O;
    match rejection {
        Rejection::Order(O::AlreadyPlaced { order_id }) => {
            conflict("order-already-placed", "Order already placed").extension("order_id", order_id.to_string())
        }
        Rejection::Order(O::NotFound { .. } | O::NotOwner { .. }) => {
            Problem::new(StatusCode::NOT_FOUND, "order-not-found", "No such order")
        }
        Rejection::Order(O::StaleVersion { expected, actual }) => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "stale-version",
            "The order has changed",
        )
        .extension("expected_version", *expected)
        .extension("current_version", *actual),
        Rejection::Order(O::IllegalTransition { status, allowed, .. }) => {
            conflict("illegal-transition", "Transition not allowed")
                .extension("current_status", status.as_str())
                .extension("allowed", allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        }
        Rejection::Order(O::IllegalPaymentTransition {
            payment_status,
            allowed,
            ..
        }) => conflict("illegal-payment-transition", "Payment transition not allowed")
            .extension("current_payment_status", payment_status.as_str())
            .extension("allowed", allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        Rejection::Order(O::Cancelled { .. }) => conflict("order-cancelled", "Order cancelled"),
        Rejection::Order(O::NotPriced { .. }) => conflict("order-not-priced", "Order has no total"),
        Rejection::Order(O::WrongPurchase { .. }) => conflict("wrong-purchase", "Order was paid by another purchase"),
        Rejection::Order(O::Pricing { .. }) => invalid_field("items"),
        Rejection::Order(O::StockPending { .. }) => {
            conflict("stock-pending", "Order is still reserving its stock").retry_after(1)
        }
        Rejection::Product(S::NotFound { .. }) => {
            Problem::new(StatusCode::NOT_FOUND, "product-not-found", "No such product")
        }
        Rejection::Product(S::WrongSku { .. }) => conflict("wrong-aggregate", "Id belongs to another product"),
        Rejection::Product(S::BelowReserved {
            on_hand_after,
            reserved,
            ..
        }) => conflict("below-reserved", "Stock on hand would fall below what is reserved")
            .extension("on_hand_after", *on_hand_after)
            .extension("reserved", *reserved),
        Rejection::Product(S::TooMuchStock { max }) => {
            conflict("too-much-stock", "Stock on hand would exceed what can be counted").extension("max", *max)
        }
        Rejection::Purchase(P::AlreadyRequested { purchase_id }) => {
            conflict("purchase-already-requested", "Purchase already requested")
                .extension("purchase_id", purchase_id.to_string())
        }
        Rejection::Purchase(P::NotFound { .. }) => {
            Problem::new(StatusCode::NOT_FOUND, "purchase-not-found", "No such purchase")
        }
        Rejection::Purchase(P::AlreadySettled { status, .. }) => {
            conflict("purchase-already-settled", "Purchase already settled")
                .extension("purchase_status", status.as_str())
        }
        Rejection::Purchase(P::NotRefundable { status, .. }) => {
            conflict("purchase-not-refundable", "Purchase not refundable").extension("purchase_status", status.as_str())
        }
        Rejection::Purchase(P::RefundExceedsRefundable { refundable, .. }) => {
            conflict("refund-exceeds-refundable", "Refund exceeds what is refundable")
                .extension("refundable", refundable.clone())
        }
        Rejection::Purchase(P::InvalidRefundAmount { .. }) => invalid_field("amount"),
        Rejection::Purchase(P::RefundAlreadyRequested { refund_id, .. }) => {
            conflict("refund-already-requested", "Refund already requested")
                .extension("refund_id", refund_id.to_string())
        }
        Rejection::Purchase(P::RefundNotRequested { .. }) => conflict("refund-not-requested", "Refund not requested"),
        Rejection::WrongAggregate { .. } => conflict("wrong-aggregate", "Id belongs to another kind of resource"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, String) {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn gateway_and_kafka_error_texts_never_reach_the_client() {
        let internal = "connect to gw.internal:8443 failed: tls handshake";
        for error in [
            ApiError::Gateway(GatewayError::Unavailable(internal.to_owned())),
            ApiError::Gateway(GatewayError::Refused(internal.to_owned())),
            ApiError::Unavailable(SubmitError::Unavailable(internal.to_owned())),
        ] {
            let (status, body) = body_of(error).await;
            assert!(status.is_server_error(), "{status}");
            assert!(!body.contains("gw.internal") && !body.contains("tls"), "{body}");
            assert!(body.contains("\"detail\""), "{body}");
        }
    }
}
