//! The validated fields of order messages: names, notes, carriers, reasons, the channel an order
//! was placed through and the details of what is ordered.

use uuid::Uuid;

use crate::message::payloads;
use crate::money::Currency;
use crate::pricing::{LineItem, Totals};
use crate::text::{at_most_text, validated_text};
use crate::validation::{bounded_text, FieldProblem, InvalidField};
use crate::wire::wire_enum;

/// The [`OrderPaymentFailed::reason`](super::OrderPaymentFailed::reason) recorded when a payment's amount (or currency) is not the
/// order's total.
pub const AMOUNT_MISMATCH: &str = "amount_mismatch";

/// The [`OrderPaymentFailed::reason`](super::OrderPaymentFailed::reason) recorded when a payment
/// arrives for an order already cancelled.
pub const ORDER_CANCELLED: &str = "order_cancelled";

/// The [`OrderCancelled::reason`](super::OrderCancelled::reason) of an order cancelled because a
/// catalog item could not be reserved.
pub const OUT_OF_STOCK: &str = "out_of_stock";

validated_text! {
    /// The customer name an order is placed under: trimmed, one line of plain text, 1–200 characters.
    OrderName { field: "name", min: 1, max: 200, rule: bounded_text }
    /// A free-text note on an order: plain text over any number of lines, at most 2,000 characters,
    /// kept as written.
    OrderNote { field: "note", min: 0, max: 2_000, rule: at_most_text }
    /// Who carries a shipped order, e.g. `UPS`: trimmed, one line of plain text, 1–100 characters.
    Carrier { field: "carrier", min: 1, max: 100, rule: bounded_text }
    /// The carrier's tracking number of a shipped order: trimmed, one line of plain text, 1–100
    /// characters.
    TrackingNumber { field: "tracking_number", min: 1, max: 100, rule: bounded_text }
    /// Why an order is cancelled: trimmed, one line of plain text, 1–500 characters.
    CancelReason { field: "reason", min: 1, max: 500, rule: bounded_text }
    /// Why a payment failed, e.g. `card_declined` or [`AMOUNT_MISMATCH`]: trimmed, one line of plain
    /// text, 1–500 characters.
    PaymentFailureReason { field: "reason", min: 1, max: 500, rule: bounded_text }
}

impl PaymentFailureReason {
    /// The reason recorded when a payment is not the order's total; a valid reason by definition.
    pub(super) fn amount_mismatch() -> Self {
        Self(AMOUNT_MISMATCH.to_owned())
    }

    /// The reason recorded when a payment arrives for a cancelled order; a valid reason by
    /// definition.
    pub(super) fn order_cancelled() -> Self {
        Self(ORDER_CANCELLED.to_owned())
    }
}

impl CancelReason {
    /// The reason of a cancellation for lack of stock; a valid reason by definition.
    pub(super) fn out_of_stock() -> Self {
        Self(OUT_OF_STOCK.to_owned())
    }
}

wire_enum! {
    /// Where an order was placed, on the wire in snake_case: `api` (a client of the HTTP API itself,
    /// and every order placed before orders carried a channel), `web` (the web shop), `mobile` (the
    /// mobile app) or `pos` (a point-of-sale till in a shop).
    #[derive(Default)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub enum Channel {
        /// The HTTP API used directly; also what an order placed before channels existed was.
        #[default]
        Api = "api",
        /// The web shop.
        Web = "web",
        /// The mobile app.
        Mobile = "mobile",
        /// A point-of-sale till.
        Pos = "pos",
    }
}

impl Channel {
    /// Reads a channel as written on the wire; anything else is an invalid `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Channel, InvalidField> {
        Self::from_wire(raw).ok_or(InvalidField::new(
            field,
            FieldProblem::Format {
                expected: "one of api, web, mobile or pos",
            },
        ))
    }
}

payloads! {
    /// What is ordered, as the client sent it: the line items and the currency they are priced in,
    /// and optionally the user placing the order.
    pub struct OrderDetails {
        user_id: Option<Uuid>,
        currency: Currency,
        items: Vec<LineItem>,
    }

    /// The order details once priced: the same items and the totals the pricing policy gave them
    /// when the order was placed. Read models use these totals rather than pricing again, so a later
    /// change of policy does not rewrite past orders.
    pub struct PricedOrderDetails {
        user_id: Option<Uuid>,
        currency: Currency,
        items: Vec<LineItem>,
        totals: Totals,
    }
}
