//! The order aggregate: an order is placed once under a customer's name, optionally with line
//! items that are priced when it is placed, then moves through its lifecycle while its payment is
//! recorded beside it.
//!
//! Lifecycle ([`OrderStatus`]): `pending → confirmed → processing → shipped → delivered`, and
//! `cancelled` from `pending` or `confirmed` only.
//!
//! Payment ([`PaymentStatus`]): `pending → paid | failed`, `failed → paid | failed` (a retry),
//! `paid → refunded`. A payment is `paid` only when its amount is exactly the order's total.
//!
//! Every command after [`PlaceOrder`] may carry the version the client last saw
//! (`expected_version`, from `If-Match`); the state counts the events applied, so a command
//! decided on an outdated view is refused with [`Rejection::StaleVersion`].
//!
//! An order belongs to the user it was placed for (`user_id`). A cancel may carry the acting
//! user; when it does, only the owner may cancel, and anyone else is refused with
//! [`Rejection::NotOwner`], checked before anything else that could tell the order exists.
//! Payments follow the same rule: a payment or payment failure names the purchase's buyer
//! (`payer`), and a buyer who is not the owner is refused with [`Rejection::NotOwner`], so one
//! user's purchase cannot settle another user's order.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::message::{parse, to_json, DecodeError, Message};
use crate::money::{Currency, Money};
use crate::pricing::{self, LineItem, PricingError, Totals};
use crate::text::{at_most_text, validated_text};
use crate::validation::{bounded_text, FieldProblem, InvalidField};
use crate::Decider;

/// Type name of [`PlaceOrder`] on the commands topic.
pub const PLACE_ORDER_V1: &str = "orderstream.order.place.v1";
/// Type name of [`ConfirmOrder`].
pub const CONFIRM_ORDER_V1: &str = "orderstream.order.confirm.v1";
/// Type name of [`StartProcessing`].
pub const START_PROCESSING_V1: &str = "orderstream.order.start-processing.v1";
/// Type name of [`ShipOrder`].
pub const SHIP_ORDER_V1: &str = "orderstream.order.ship.v1";
/// Type name of [`DeliverOrder`].
pub const DELIVER_ORDER_V1: &str = "orderstream.order.deliver.v1";
/// Type name of [`CancelOrder`].
pub const CANCEL_ORDER_V1: &str = "orderstream.order.cancel.v1";
/// Type name of [`RecordPayment`].
pub const RECORD_PAYMENT_V1: &str = "orderstream.order.record-payment.v1";
/// Type name of [`RecordPaymentFailure`].
pub const RECORD_PAYMENT_FAILURE_V1: &str = "orderstream.order.record-payment-failure.v1";
/// Type name of [`RecordRefund`].
pub const RECORD_REFUND_V1: &str = "orderstream.order.record-refund.v1";

/// Type name of [`OrderPlaced`] on the events topic (`ce_type`): the version the decider writes.
pub const ORDER_PLACED_V3: &str = "orderstream.order.placed.v3";
/// Type name of the second version of [`OrderPlaced`], written before every order had an owner
/// (`user_id`) outside its details. Decoded only: [`upcast::order_placed_v2`] turns it into the
/// current shape.
pub const ORDER_PLACED_V2: &str = "orderstream.order.placed.v2";
/// Type name of the first version of [`OrderPlaced`], written before orders had a [`Channel`].
/// Decoded only, never written: [`upcast::order_placed_v1`] turns it into the current shape.
pub const ORDER_PLACED_V1: &str = "orderstream.order.placed.v1";
/// Type name of [`OrderConfirmed`].
pub const ORDER_CONFIRMED_V1: &str = "orderstream.order.confirmed.v1";
/// Type name of [`OrderProcessingStarted`].
pub const ORDER_PROCESSING_STARTED_V1: &str = "orderstream.order.processing-started.v1";
/// Type name of [`OrderShipped`].
pub const ORDER_SHIPPED_V1: &str = "orderstream.order.shipped.v1";
/// Type name of [`OrderDelivered`].
pub const ORDER_DELIVERED_V1: &str = "orderstream.order.delivered.v1";
/// Type name of [`OrderCancelled`].
pub const ORDER_CANCELLED_V1: &str = "orderstream.order.cancelled.v1";
/// Type name of [`OrderPaid`].
pub const ORDER_PAID_V1: &str = "orderstream.order.paid.v1";
/// Type name of [`OrderPaymentFailed`].
pub const ORDER_PAYMENT_FAILED_V1: &str = "orderstream.order.payment-failed.v1";
/// Type name of [`OrderRefunded`].
pub const ORDER_REFUNDED_V1: &str = "orderstream.order.refunded.v1";

/// The [`OrderPaymentFailed::reason`] recorded when a payment's amount (or currency) is not the
/// order's total.
pub const AMOUNT_MISMATCH: &str = "amount_mismatch";

validated_text!(
    /// The customer name an order is placed under: trimmed, one line of plain text, 1–200 characters.
    OrderName { field: "name", min: 1, max: 200, rule: bounded_text }
);

validated_text!(
    /// A free-text note on an order: plain text over any number of lines, at most 2,000 characters,
    /// kept as written.
    OrderNote { field: "note", min: 0, max: 2_000, rule: at_most_text }
);

validated_text!(
    /// Who carries a shipped order, e.g. `UPS`: trimmed, one line of plain text, 1–100 characters.
    Carrier { field: "carrier", min: 1, max: 100, rule: bounded_text }
);

validated_text!(
    /// The carrier's tracking number of a shipped order: trimmed, one line of plain text, 1–100
    /// characters.
    TrackingNumber { field: "tracking_number", min: 1, max: 100, rule: bounded_text }
);

validated_text!(
    /// Why an order is cancelled: trimmed, one line of plain text, 1–500 characters.
    CancelReason { field: "reason", min: 1, max: 500, rule: bounded_text }
);

validated_text!(
    /// Why a payment failed, e.g. `card_declined` or [`AMOUNT_MISMATCH`]: trimmed, one line of plain
    /// text, 1–500 characters.
    PaymentFailureReason { field: "reason", min: 1, max: 500, rule: bounded_text }
);

/// Where an order was placed, on the wire in snake_case: `api` (a client of the HTTP API itself,
/// and every order placed before orders carried a channel), `web` (the web shop), `mobile` (the
/// mobile app) or `pos` (a point-of-sale till in a shop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Channel {
    /// The HTTP API used directly; also what an order placed before channels existed was.
    #[default]
    Api,
    /// The web shop.
    Web,
    /// The mobile app.
    Mobile,
    /// A point-of-sale till.
    Pos,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Api, Self::Web, Self::Mobile, Self::Pos];

    /// The wire (and read model) spelling, e.g. `pos`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Web => "web",
            Self::Mobile => "mobile",
            Self::Pos => "pos",
        }
    }

    /// Reads a channel as written on the wire; anything else is an invalid `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Channel, InvalidField> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or(InvalidField::new(
                field,
                FieldProblem::Format {
                    expected: "one of api, web, mobile or pos",
                },
            ))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is ordered, as the client sent it: the line items and the currency they are priced in,
/// and optionally the user placing the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub currency: Currency,
    pub items: Vec<LineItem>,
}

/// The order details once priced: the same items and the totals the pricing policy gave them
/// when the order was placed. Read models use these totals rather than pricing again, so a later
/// change of policy does not rewrite past orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PricedOrderDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub totals: Totals,
}

/// Place a new order. The edge stamps `placed_at` and picks `order_id`. Without `details` the
/// order has no items and no total (the seed's orders), and takes no payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub name: OrderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<OrderNote>,
    pub placed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<OrderDetails>,
    /// Where the order is placed; [`Channel::Api`] when not said. Optional, so the command keeps
    /// its type name (`orderstream.order.place.v1`): older commands still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The user the order belongs to, with or without items; when absent, the user of the
    /// details, if any. Optional for the same reason as `channel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// Confirm a pending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfirmOrder {
    pub order_id: Uuid,
    /// The order version the client acts on (`If-Match`); `None` skips the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Start processing a confirmed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StartProcessing {
    pub order_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Hand an order in processing to a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ShipOrder {
    pub order_id: Uuid,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Record that a shipped order arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliverOrder {
    pub order_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Cancel an order that has not started processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CancelOrder {
    pub order_id: Uuid,
    pub reason: CancelReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub at: DateTime<Utc>,
    /// The user cancelling their own order: only the order's owner may then cancel it. Absent
    /// when staff cancel, who may cancel any order. Optional, so older commands still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user: Option<Uuid>,
}

/// Record that purchase `purchase_id` paid `amount` for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordPayment {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub paid_at: DateTime<Utc>,
    /// The buyer of the purchase: only a purchase of the order's owner may pay it. Absent when
    /// the purchase's events did not name their buyer. Optional, so older commands still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Uuid>,
}

/// Record that purchase `purchase_id` failed to pay for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordPaymentFailure {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    pub reason: PaymentFailureReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub failed_at: DateTime<Utc>,
    /// The buyer of the purchase: only a purchase of the order's owner may mark its payment
    /// failed. Absent when the purchase's events did not name their buyer. Optional, so older
    /// commands still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Uuid>,
}

/// Record that the purchase that paid for the order was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordRefund {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub refunded_at: DateTime<Utc>,
}

/// An order was placed. `placed_at` is the event time read models use, `channel` where it was
/// placed, `user_id` whose it is. Written as `orderstream.order.placed.v3`; a v1 event (without
/// `channel`) or v2 event (owner only inside the details) decodes to this shape (see `upcast`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub name: OrderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<OrderNote>,
    pub placed_at: DateTime<Utc>,
    /// The items and their totals, when the order was placed with items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<PricedOrderDetails>,
    /// Where the order was placed.
    pub channel: Channel,
    /// The user the order belongs to; absent only for orders placed before every order had one
    /// and placed without a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// Older versions of events, and the one place they become the current shape.
///
/// Decoding ([`Message::decode`] of [`Event`]) sends every superseded version through here, so
/// nothing downstream of `domain` ever sees one. To evolve an event: freeze its current struct
/// here under a versioned name (keeping its doc and fields exactly, so its checked-in schema
/// stays byte-identical), change the current struct, give it a new type name, and add an upcast
/// below plus a decode arm for the old name.
pub mod upcast {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::{Channel, OrderName, OrderNote, OrderPlaced, PricedOrderDetails};

    // `orderstream.order.placed.v2`, frozen: the shape of `OrderPlaced` before `user_id`. Its
    // doc comment is its schema's description and must not change.
    /// An order was placed. `placed_at` is the event time read models use, `channel` where it was
    /// placed. Written as `orderstream.order.placed.v2`; a v1 event (without `channel`) decodes to
    /// this shape with `channel: api` (see `upcast`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[cfg_attr(feature = "schema", schemars(rename = "OrderPlaced"))]
    pub struct OrderPlacedV2 {
        pub order_id: Uuid,
        pub name: OrderName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub note: Option<OrderNote>,
        pub placed_at: DateTime<Utc>,
        /// The items and their totals, when the order was placed with items.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub details: Option<PricedOrderDetails>,
        /// Where the order was placed.
        pub channel: Channel,
    }

    /// `orderstream.order.placed.v2` → current: the owner was the user of the details, and an
    /// order placed without one belongs to nobody.
    pub fn order_placed_v2(v2: OrderPlacedV2) -> OrderPlaced {
        OrderPlaced {
            user_id: v2.details.as_ref().and_then(|details| details.user_id),
            order_id: v2.order_id,
            name: v2.name,
            note: v2.note,
            placed_at: v2.placed_at,
            details: v2.details,
            channel: v2.channel,
        }
    }

    // `orderstream.order.placed.v1`, frozen: the shape of `OrderPlaced` before `channel`. Its
    // doc comment is its schema's description and must not change.
    /// An order was placed. `placed_at` is the event time read models use.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[cfg_attr(feature = "schema", schemars(rename = "OrderPlaced"))]
    pub struct OrderPlacedV1 {
        pub order_id: Uuid,
        pub name: OrderName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub note: Option<OrderNote>,
        pub placed_at: DateTime<Utc>,
        /// The items and their totals, when the order was placed with items.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub details: Option<PricedOrderDetails>,
    }

    /// `orderstream.order.placed.v1` → current: every order placed before channels existed was
    /// placed through the API, and belongs to the user of its details, if any.
    pub fn order_placed_v1(v1: OrderPlacedV1) -> OrderPlaced {
        order_placed_v2(OrderPlacedV2 {
            order_id: v1.order_id,
            name: v1.name,
            note: v1.note,
            placed_at: v1.placed_at,
            details: v1.details,
            channel: Channel::Api,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub confirmed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderProcessingStarted {
    pub order_id: Uuid,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderShipped {
    pub order_id: Uuid,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub shipped_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderDelivered {
    pub order_id: Uuid,
    pub delivered_at: DateTime<Utc>,
}

/// An order was cancelled. When it had been paid, `refund_requested_for` names the purchase to
/// refund; the refund itself is recorded later, as `orderstream.order.refunded.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub reason: CancelReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_requested_for: Option<Uuid>,
    /// What to refund of that purchase: the amount it paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<Money>,
    pub cancelled_at: DateTime<Utc>,
}

/// The order's total was paid by purchase `purchase_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderPaid {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    pub amount: Money,
    pub paid_at: DateTime<Utc>,
}

/// A payment for the order failed. For `amount_mismatch`, `amount` is what was paid instead of
/// the total (money that may have to be returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderPaymentFailed {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    pub reason: PaymentFailureReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    pub failed_at: DateTime<Utc>,
}

/// The purchase that paid for the order was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderRefunded {
    pub order_id: Uuid,
    pub purchase_id: Uuid,
    pub refunded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    PlaceOrder(PlaceOrder),
    ConfirmOrder(ConfirmOrder),
    StartProcessing(StartProcessing),
    ShipOrder(ShipOrder),
    DeliverOrder(DeliverOrder),
    CancelOrder(CancelOrder),
    RecordPayment(RecordPayment),
    RecordPaymentFailure(RecordPaymentFailure),
    RecordRefund(RecordRefund),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    OrderPlaced(OrderPlaced),
    OrderConfirmed(OrderConfirmed),
    OrderProcessingStarted(OrderProcessingStarted),
    OrderShipped(OrderShipped),
    OrderDelivered(OrderDelivered),
    OrderCancelled(OrderCancelled),
    OrderPaid(OrderPaid),
    OrderPaymentFailed(OrderPaymentFailed),
    OrderRefunded(OrderRefunded),
}

/// Where an order stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        Self::Pending,
        Self::Confirmed,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// The statuses an order may move to from this one; empty once delivered or cancelled.
    pub fn next(self) -> &'static [OrderStatus] {
        match self {
            Self::Pending => &[Self::Confirmed, Self::Cancelled],
            Self::Confirmed => &[Self::Processing, Self::Cancelled],
            Self::Processing => &[Self::Shipped],
            Self::Shipped => &[Self::Delivered],
            Self::Delivered | Self::Cancelled => &[],
        }
    }

    pub fn can_become(self, next: OrderStatus) -> bool {
        self.next().contains(&next)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Paid,
    /// The last attempt failed; another may still pay.
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] = [Self::Pending, Self::Paid, Self::Failed, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }

    /// The payment statuses reachable from this one. `failed` may fail again or be paid by a retry.
    pub fn next(self) -> &'static [PaymentStatus] {
        match self {
            Self::Pending | Self::Failed => &[Self::Paid, Self::Failed],
            Self::Paid => &[Self::Refunded],
            Self::Refunded => &[],
        }
    }

    pub fn can_become(self, next: PaymentStatus) -> bool {
        self.next().contains(&next)
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    NotPlaced,
    Placed {
        status: OrderStatus,
        payment_status: PaymentStatus,
        /// What the order costs, if it was placed with items; an order without one takes no payment.
        total: Option<Money>,
        /// The purchase that paid the order, once paid (kept after a refund).
        paid_with: Option<Uuid>,
        /// The user the order belongs to, if it has one.
        owner: Option<Uuid>,
        /// How many events of this order have been applied: 1 once placed. The same number as
        /// the `ce_sequence` of the order's last event, so an `If-Match` can be checked against it.
        version: u64,
    },
}

impl State {
    /// The order's version: 0 before it is placed.
    pub fn version(&self) -> u64 {
        match self {
            Self::NotPlaced => 0,
            Self::Placed { version, .. } => *version,
        }
    }

    pub fn status(&self) -> Option<OrderStatus> {
        match self {
            Self::NotPlaced => None,
            Self::Placed { status, .. } => Some(*status),
        }
    }

    pub fn payment_status(&self) -> Option<PaymentStatus> {
        match self {
            Self::NotPlaced => None,
            Self::Placed { payment_status, .. } => Some(*payment_status),
        }
    }
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rejection {
    #[error("order {order_id} has already been placed")]
    AlreadyPlaced { order_id: Uuid },
    #[error("order {order_id} does not exist")]
    NotFound { order_id: Uuid },
    /// The acting user is not the order's owner. The edge answers it exactly as
    /// [`Rejection::NotFound`], so nobody learns that another user's order exists.
    #[error("order {order_id} belongs to another user")]
    NotOwner { order_id: Uuid },
    /// The client acted on version `expected` (`If-Match`), but the order is at `actual`.
    #[error("order is at version {actual}, not the expected {expected}")]
    StaleVersion { expected: u64, actual: u64 },
    /// The order cannot move from `status` to what the command asks; `allowed` are the statuses
    /// it can move to.
    #[error("order {order_id} is {status}; it can only become {}", listed(.allowed))]
    IllegalTransition {
        order_id: Uuid,
        status: OrderStatus,
        allowed: Vec<OrderStatus>,
    },
    /// The payment cannot move from `payment_status` to what the command records; `allowed` are
    /// the payment statuses it can move to.
    #[error("payment of order {order_id} is {payment_status}; it can only become {}", listed(.allowed))]
    IllegalPaymentTransition {
        order_id: Uuid,
        payment_status: PaymentStatus,
        allowed: Vec<PaymentStatus>,
    },
    /// A cancelled order takes no payment (a refund of an earlier one is still recorded).
    #[error("order {order_id} is cancelled and takes no payment")]
    Cancelled { order_id: Uuid },
    /// The order was placed without items, so there is no total to pay.
    #[error("order {order_id} has no total to pay")]
    NotPriced { order_id: Uuid },
    /// A refund names a purchase other than the one that paid the order.
    #[error("order {order_id} was paid by purchase {paid_with}, not {purchase_id}")]
    WrongPurchase {
        order_id: Uuid,
        purchase_id: Uuid,
        paid_with: Uuid,
    },
    /// The order's items could not be priced.
    #[error("order {order_id} cannot be priced: {problem}")]
    Pricing { order_id: Uuid, problem: PricingError },
}

/// `a, b or c`, or `nothing` for an empty list.
fn listed<T: fmt::Display>(items: &[T]) -> String {
    match items {
        [] => "nothing".to_owned(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}

/// The order aggregate.
#[derive(Debug)]
pub struct Order;

/// What `decide` reads of a placed order.
#[derive(Debug, Clone, Copy)]
struct Placed {
    order_id: Uuid,
    status: OrderStatus,
    payment_status: PaymentStatus,
    total: Option<Money>,
    paid_with: Option<Uuid>,
}

impl Placed {
    /// Checks the order may move to `next`.
    fn advance(&self, next: OrderStatus) -> Result<(), Rejection> {
        if self.status.can_become(next) {
            return Ok(());
        }
        Err(Rejection::IllegalTransition {
            order_id: self.order_id,
            status: self.status,
            allowed: self.status.next().to_vec(),
        })
    }

    /// Checks a payment may be recorded as `next`: payments (`paid`, `failed`) only while the
    /// order is not cancelled, refunds whatever the order's status.
    fn settle(&self, next: PaymentStatus) -> Result<(), Rejection> {
        if next != PaymentStatus::Refunded && self.status == OrderStatus::Cancelled {
            return Err(Rejection::Cancelled {
                order_id: self.order_id,
            });
        }
        if self.payment_status.can_become(next) {
            return Ok(());
        }
        Err(Rejection::IllegalPaymentTransition {
            order_id: self.order_id,
            payment_status: self.payment_status,
            allowed: self.payment_status.next().to_vec(),
        })
    }
}

fn place_order(place: &PlaceOrder) -> Result<Event, Rejection> {
    let details = place
        .details
        .as_ref()
        .map(|details| {
            pricing::price(&details.items, details.currency)
                .map(|totals| PricedOrderDetails {
                    user_id: details.user_id,
                    currency: details.currency,
                    items: details.items.clone(),
                    totals,
                })
                .map_err(|problem| Rejection::Pricing {
                    order_id: place.order_id,
                    problem,
                })
        })
        .transpose()?;
    let user_id = place.user_id.or(details.as_ref().and_then(|details| details.user_id));
    Ok(Event::OrderPlaced(OrderPlaced {
        order_id: place.order_id,
        name: place.name.clone(),
        note: place.note.clone(),
        placed_at: place.placed_at,
        details,
        channel: place.channel.unwrap_or_default(),
        user_id,
    }))
}

impl Decider for Order {
    type Command = Command;
    type Event = Event;
    type State = State;
    type Rejection = Rejection;

    fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
        let order_id = command.order_id();
        let (order, version) = match (state, command) {
            (State::NotPlaced, Command::PlaceOrder(place)) => return place_order(place).map(|event| vec![event]),
            (State::Placed { .. }, Command::PlaceOrder(_)) => return Err(Rejection::AlreadyPlaced { order_id }),
            (State::NotPlaced, _) => return Err(Rejection::NotFound { order_id }),
            (
                State::Placed {
                    status,
                    payment_status,
                    total,
                    paid_with,
                    owner,
                    version,
                },
                _,
            ) => {
                // Before the version check, whose answer would tell the order exists.
                if let Command::CancelOrder(CancelOrder {
                    acting_user: Some(acting_user),
                    ..
                }) = command
                {
                    if *owner != Some(*acting_user) {
                        return Err(Rejection::NotOwner { order_id });
                    }
                }
                // Another user's purchase naming this order must not settle its payment. An
                // order without an owner, or a purchase whose buyer is unknown, is as before.
                if let Command::RecordPayment(RecordPayment { payer: Some(payer), .. })
                | Command::RecordPaymentFailure(RecordPaymentFailure { payer: Some(payer), .. }) = command
                {
                    if owner.is_some_and(|owner| owner != *payer) {
                        return Err(Rejection::NotOwner { order_id });
                    }
                }
                (
                    Placed {
                        order_id,
                        status: *status,
                        payment_status: *payment_status,
                        total: *total,
                        paid_with: *paid_with,
                    },
                    *version,
                )
            }
        };
        if let Some(expected) = command.expected_version().filter(|expected| *expected != version) {
            return Err(Rejection::StaleVersion {
                expected,
                actual: version,
            });
        }
        let event = match command {
            Command::PlaceOrder(_) => return Err(Rejection::AlreadyPlaced { order_id }),
            Command::ConfirmOrder(confirm) => {
                order.advance(OrderStatus::Confirmed)?;
                Event::OrderConfirmed(OrderConfirmed {
                    order_id,
                    confirmed_at: confirm.at,
                })
            }
            Command::StartProcessing(start) => {
                order.advance(OrderStatus::Processing)?;
                Event::OrderProcessingStarted(OrderProcessingStarted {
                    order_id,
                    started_at: start.at,
                })
            }
            Command::ShipOrder(ship) => {
                order.advance(OrderStatus::Shipped)?;
                Event::OrderShipped(OrderShipped {
                    order_id,
                    carrier: ship.carrier.clone(),
                    tracking_number: ship.tracking_number.clone(),
                    shipped_at: ship.at,
                })
            }
            Command::DeliverOrder(deliver) => {
                order.advance(OrderStatus::Delivered)?;
                Event::OrderDelivered(OrderDelivered {
                    order_id,
                    delivered_at: deliver.at,
                })
            }
            Command::CancelOrder(cancel) => {
                order.advance(OrderStatus::Cancelled)?;
                let paid = order.payment_status == PaymentStatus::Paid;
                Event::OrderCancelled(OrderCancelled {
                    order_id,
                    reason: cancel.reason.clone(),
                    refund_requested_for: order.paid_with.filter(|_| paid),
                    refund_amount: order.total.filter(|_| paid),
                    cancelled_at: cancel.at,
                })
            }
            Command::RecordPayment(payment) => {
                order.settle(PaymentStatus::Paid)?;
                let total = order.total.ok_or(Rejection::NotPriced { order_id })?;
                if payment.amount == total {
                    Event::OrderPaid(OrderPaid {
                        order_id,
                        purchase_id: payment.purchase_id,
                        amount: payment.amount,
                        paid_at: payment.paid_at,
                    })
                } else {
                    Event::OrderPaymentFailed(OrderPaymentFailed {
                        order_id,
                        purchase_id: payment.purchase_id,
                        reason: PaymentFailureReason(AMOUNT_MISMATCH.to_owned()),
                        amount: Some(payment.amount),
                        failed_at: payment.paid_at,
                    })
                }
            }
            Command::RecordPaymentFailure(failure) => {
                order.settle(PaymentStatus::Failed)?;
                Event::OrderPaymentFailed(OrderPaymentFailed {
                    order_id,
                    purchase_id: failure.purchase_id,
                    reason: failure.reason.clone(),
                    amount: None,
                    failed_at: failure.failed_at,
                })
            }
            Command::RecordRefund(refund) => {
                order.settle(PaymentStatus::Refunded)?;
                match order.paid_with {
                    Some(paid_with) if paid_with != refund.purchase_id => {
                        return Err(Rejection::WrongPurchase {
                            order_id,
                            purchase_id: refund.purchase_id,
                            paid_with,
                        })
                    }
                    _ => {}
                }
                Event::OrderRefunded(OrderRefunded {
                    order_id,
                    purchase_id: refund.purchase_id,
                    refunded_at: refund.refunded_at,
                })
            }
        };
        Ok(vec![event])
    }

    /// Applies a fact. A fact that does not fit the state (a status change not allowed from the
    /// current status) cannot have been decided here and leaves the status as it is, but still
    /// counts towards the version, which follows the log.
    fn evolve(state: State, event: &Event) -> State {
        let State::Placed {
            mut status,
            mut payment_status,
            total,
            mut paid_with,
            owner,
            version,
        } = state
        else {
            return match event {
                Event::OrderPlaced(placed) => State::Placed {
                    status: OrderStatus::Pending,
                    payment_status: PaymentStatus::Pending,
                    total: placed.details.as_ref().map(|details| details.totals.total),
                    paid_with: None,
                    owner: placed.user_id,
                    version: 1,
                },
                // Nothing can be decided for an order that was never placed.
                _ => State::NotPlaced,
            };
        };
        let mut advance = |next: OrderStatus| {
            if status.can_become(next) {
                status = next;
            }
        };
        match event {
            Event::OrderPlaced(_) => {}
            Event::OrderConfirmed(_) => advance(OrderStatus::Confirmed),
            Event::OrderProcessingStarted(_) => advance(OrderStatus::Processing),
            Event::OrderShipped(_) => advance(OrderStatus::Shipped),
            Event::OrderDelivered(_) => advance(OrderStatus::Delivered),
            Event::OrderCancelled(_) => advance(OrderStatus::Cancelled),
            Event::OrderPaid(paid) => {
                if payment_status.can_become(PaymentStatus::Paid) {
                    payment_status = PaymentStatus::Paid;
                    paid_with = Some(paid.purchase_id);
                }
            }
            Event::OrderPaymentFailed(_) => {
                if payment_status.can_become(PaymentStatus::Failed) {
                    payment_status = PaymentStatus::Failed;
                }
            }
            Event::OrderRefunded(_) => {
                if payment_status.can_become(PaymentStatus::Refunded) {
                    payment_status = PaymentStatus::Refunded;
                }
            }
        }
        State::Placed {
            status,
            payment_status,
            total,
            paid_with,
            owner,
            version: version.saturating_add(1),
        }
    }
}

impl Command {
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::PlaceOrder(c) => c.order_id,
            Self::ConfirmOrder(c) => c.order_id,
            Self::StartProcessing(c) => c.order_id,
            Self::ShipOrder(c) => c.order_id,
            Self::DeliverOrder(c) => c.order_id,
            Self::CancelOrder(c) => c.order_id,
            Self::RecordPayment(c) => c.order_id,
            Self::RecordPaymentFailure(c) => c.order_id,
            Self::RecordRefund(c) => c.order_id,
        }
    }

    /// The version the client acted on (`If-Match`), if it said; never for [`PlaceOrder`].
    pub fn expected_version(&self) -> Option<u64> {
        match self {
            Self::PlaceOrder(_) => None,
            Self::ConfirmOrder(c) => c.expected_version,
            Self::StartProcessing(c) => c.expected_version,
            Self::ShipOrder(c) => c.expected_version,
            Self::DeliverOrder(c) => c.expected_version,
            Self::CancelOrder(c) => c.expected_version,
            Self::RecordPayment(c) => c.expected_version,
            Self::RecordPaymentFailure(c) => c.expected_version,
            Self::RecordRefund(c) => c.expected_version,
        }
    }
}

impl Message for Command {
    fn message_type(&self) -> &'static str {
        match self {
            Self::PlaceOrder(_) => PLACE_ORDER_V1,
            Self::ConfirmOrder(_) => CONFIRM_ORDER_V1,
            Self::StartProcessing(_) => START_PROCESSING_V1,
            Self::ShipOrder(_) => SHIP_ORDER_V1,
            Self::DeliverOrder(_) => DELIVER_ORDER_V1,
            Self::CancelOrder(_) => CANCEL_ORDER_V1,
            Self::RecordPayment(_) => RECORD_PAYMENT_V1,
            Self::RecordPaymentFailure(_) => RECORD_PAYMENT_FAILURE_V1,
            Self::RecordRefund(_) => RECORD_REFUND_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        self.order_id()
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::PlaceOrder(c) => to_json(c),
            Self::ConfirmOrder(c) => to_json(c),
            Self::StartProcessing(c) => to_json(c),
            Self::ShipOrder(c) => to_json(c),
            Self::DeliverOrder(c) => to_json(c),
            Self::CancelOrder(c) => to_json(c),
            Self::RecordPayment(c) => to_json(c),
            Self::RecordPaymentFailure(c) => to_json(c),
            Self::RecordRefund(c) => to_json(c),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            PLACE_ORDER_V1 => parse(message_type, data).map(Self::PlaceOrder),
            CONFIRM_ORDER_V1 => parse(message_type, data).map(Self::ConfirmOrder),
            START_PROCESSING_V1 => parse(message_type, data).map(Self::StartProcessing),
            SHIP_ORDER_V1 => parse(message_type, data).map(Self::ShipOrder),
            DELIVER_ORDER_V1 => parse(message_type, data).map(Self::DeliverOrder),
            CANCEL_ORDER_V1 => parse(message_type, data).map(Self::CancelOrder),
            RECORD_PAYMENT_V1 => parse(message_type, data).map(Self::RecordPayment),
            RECORD_PAYMENT_FAILURE_V1 => parse(message_type, data).map(Self::RecordPaymentFailure),
            RECORD_REFUND_V1 => parse(message_type, data).map(Self::RecordRefund),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Message for Event {
    fn message_type(&self) -> &'static str {
        match self {
            Self::OrderPlaced(_) => ORDER_PLACED_V3,
            Self::OrderConfirmed(_) => ORDER_CONFIRMED_V1,
            Self::OrderProcessingStarted(_) => ORDER_PROCESSING_STARTED_V1,
            Self::OrderShipped(_) => ORDER_SHIPPED_V1,
            Self::OrderDelivered(_) => ORDER_DELIVERED_V1,
            Self::OrderCancelled(_) => ORDER_CANCELLED_V1,
            Self::OrderPaid(_) => ORDER_PAID_V1,
            Self::OrderPaymentFailed(_) => ORDER_PAYMENT_FAILED_V1,
            Self::OrderRefunded(_) => ORDER_REFUNDED_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        self.order_id()
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::OrderPlaced(e) => to_json(e),
            Self::OrderConfirmed(e) => to_json(e),
            Self::OrderProcessingStarted(e) => to_json(e),
            Self::OrderShipped(e) => to_json(e),
            Self::OrderDelivered(e) => to_json(e),
            Self::OrderCancelled(e) => to_json(e),
            Self::OrderPaid(e) => to_json(e),
            Self::OrderPaymentFailed(e) => to_json(e),
            Self::OrderRefunded(e) => to_json(e),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            ORDER_PLACED_V3 => parse(message_type, data).map(Self::OrderPlaced),
            // Superseded versions: upcast here, and only here.
            ORDER_PLACED_V2 => parse(message_type, data).map(|v2| Self::OrderPlaced(upcast::order_placed_v2(v2))),
            ORDER_PLACED_V1 => parse(message_type, data).map(|v1| Self::OrderPlaced(upcast::order_placed_v1(v1))),
            ORDER_CONFIRMED_V1 => parse(message_type, data).map(Self::OrderConfirmed),
            ORDER_PROCESSING_STARTED_V1 => parse(message_type, data).map(Self::OrderProcessingStarted),
            ORDER_SHIPPED_V1 => parse(message_type, data).map(Self::OrderShipped),
            ORDER_DELIVERED_V1 => parse(message_type, data).map(Self::OrderDelivered),
            ORDER_CANCELLED_V1 => parse(message_type, data).map(Self::OrderCancelled),
            ORDER_PAID_V1 => parse(message_type, data).map(Self::OrderPaid),
            ORDER_PAYMENT_FAILED_V1 => parse(message_type, data).map(Self::OrderPaymentFailed),
            ORDER_REFUNDED_V1 => parse(message_type, data).map(Self::OrderRefunded),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Event {
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::OrderPlaced(e) => e.order_id,
            Self::OrderConfirmed(e) => e.order_id,
            Self::OrderProcessingStarted(e) => e.order_id,
            Self::OrderShipped(e) => e.order_id,
            Self::OrderDelivered(e) => e.order_id,
            Self::OrderCancelled(e) => e.order_id,
            Self::OrderPaid(e) => e.order_id,
            Self::OrderPaymentFailed(e) => e.order_id,
            Self::OrderRefunded(e) => e.order_id,
        }
    }

    /// When the fact happened, by the clock of the edge (or reactor) that accepted the command.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::OrderPlaced(e) => e.placed_at,
            Self::OrderConfirmed(e) => e.confirmed_at,
            Self::OrderProcessingStarted(e) => e.started_at,
            Self::OrderShipped(e) => e.shipped_at,
            Self::OrderDelivered(e) => e.delivered_at,
            Self::OrderCancelled(e) => e.cancelled_at,
            Self::OrderPaid(e) => e.paid_at,
            Self::OrderPaymentFailed(e) => e.failed_at,
            Self::OrderRefunded(e) => e.refunded_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::pricing::{ItemName, Quantity, Sku};
    use crate::testing::given;
    use crate::{FieldProblem, InvalidField};
    use proptest::prelude::*;
    use OrderStatus::{Cancelled, Confirmed, Delivered, Pending, Processing, Shipped};

    const ID: Uuid = Uuid::from_u128(1);
    const PURCHASE: Uuid = Uuid::from_u128(2);
    const OTHER_PURCHASE: Uuid = Uuid::from_u128(3);
    const USER: Uuid = Uuid::from_u128(4);
    const OTHER_USER: Uuid = Uuid::from_u128(5);

    fn at(time: &str) -> DateTime<Utc> {
        time.parse().unwrap()
    }

    /// The time of the `n`th step after placing.
    fn t(n: i64) -> DateTime<Utc> {
        at("2025-01-19T15:04:05Z") + chrono::Duration::minutes(n)
    }

    fn usd_currency() -> Currency {
        Currency::parse("currency", "USD").unwrap()
    }

    fn money(minor: i64, code: &str) -> Money {
        Money::from_minor(minor, Currency::parse("currency", code).unwrap()).unwrap()
    }

    fn usd(minor: i64) -> Money {
        money(minor, "USD")
    }

    fn item(sku: &str, quantity: i64, unit_minor: i64) -> LineItem {
        LineItem {
            sku: Sku::parse(sku).unwrap(),
            name: ItemName::parse(&format!("Item {sku}")).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: usd(unit_minor),
        }
    }

    fn place(order_id: Uuid, name: &str) -> PlaceOrder {
        PlaceOrder {
            order_id,
            name: OrderName::parse(name).unwrap(),
            note: Some(OrderNote::parse("First order").unwrap()),
            placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
            details: None,
            channel: None,
            user_id: None,
        }
    }

    fn placed(command: &PlaceOrder) -> Event {
        Event::OrderPlaced(OrderPlaced {
            order_id: command.order_id,
            name: command.name.clone(),
            note: command.note.clone(),
            placed_at: command.placed_at,
            details: None,
            channel: command.channel.unwrap_or_default(),
            user_id: command.user_id,
        })
    }

    /// 2 × 12.34 + 1 × 5.00 USD.
    fn example_items() -> Vec<LineItem> {
        vec![item("SKU-1", 2, 1234), item("SKU-2", 1, 500)]
    }

    fn place_priced(items: Vec<LineItem>) -> PlaceOrder {
        PlaceOrder {
            details: Some(OrderDetails {
                user_id: Some(USER),
                currency: usd_currency(),
                items,
            }),
            ..place(ID, "John Doe")
        }
    }

    /// The example order, priced: 29.68 + 2.37 tax + 9.99 shipping = 42.04.
    fn placed_priced() -> Event {
        let command = place_priced(example_items());
        Event::OrderPlaced(OrderPlaced {
            details: Some(PricedOrderDetails {
                user_id: Some(USER),
                currency: usd_currency(),
                items: example_items(),
                totals: Totals {
                    subtotal: usd(2968),
                    tax: usd(237),
                    shipping: usd(999),
                    total: usd(4204),
                },
            }),
            user_id: Some(USER),
            ..match placed(&command) {
                Event::OrderPlaced(placed) => placed,
                _ => unreachable!(),
            }
        })
    }

    const TOTAL: i64 = 4204;

    fn confirm(expected_version: Option<u64>) -> Command {
        Command::ConfirmOrder(ConfirmOrder {
            order_id: ID,
            expected_version,
            at: t(1),
        })
    }

    fn confirmed() -> Event {
        Event::OrderConfirmed(OrderConfirmed {
            order_id: ID,
            confirmed_at: t(1),
        })
    }

    fn start(expected_version: Option<u64>) -> Command {
        Command::StartProcessing(StartProcessing {
            order_id: ID,
            expected_version,
            at: t(2),
        })
    }

    fn started() -> Event {
        Event::OrderProcessingStarted(OrderProcessingStarted {
            order_id: ID,
            started_at: t(2),
        })
    }

    fn ship(expected_version: Option<u64>) -> Command {
        Command::ShipOrder(ShipOrder {
            order_id: ID,
            carrier: Carrier::parse(" UPS ").unwrap(),
            tracking_number: TrackingNumber::parse("1Z999AA10123456784").unwrap(),
            expected_version,
            at: t(3),
        })
    }

    fn shipped() -> Event {
        Event::OrderShipped(OrderShipped {
            order_id: ID,
            carrier: Carrier::parse("UPS").unwrap(),
            tracking_number: TrackingNumber::parse("1Z999AA10123456784").unwrap(),
            shipped_at: t(3),
        })
    }

    fn deliver(expected_version: Option<u64>) -> Command {
        Command::DeliverOrder(DeliverOrder {
            order_id: ID,
            expected_version,
            at: t(4),
        })
    }

    fn delivered() -> Event {
        Event::OrderDelivered(OrderDelivered {
            order_id: ID,
            delivered_at: t(4),
        })
    }

    fn cancel(expected_version: Option<u64>) -> Command {
        Command::CancelOrder(CancelOrder {
            order_id: ID,
            reason: CancelReason::parse("changed my mind").unwrap(),
            expected_version,
            at: t(5),
            acting_user: None,
        })
    }

    fn cancelled(refund_requested_for: Option<Uuid>) -> Event {
        Event::OrderCancelled(OrderCancelled {
            order_id: ID,
            reason: CancelReason::parse("changed my mind").unwrap(),
            refund_amount: refund_requested_for.map(|_| usd(TOTAL)),
            refund_requested_for,
            cancelled_at: t(5),
        })
    }

    fn pay(purchase_id: Uuid, amount: Money) -> Command {
        Command::RecordPayment(RecordPayment {
            order_id: ID,
            purchase_id,
            amount,
            expected_version: None,
            paid_at: t(6),
            payer: None,
        })
    }

    fn paid(purchase_id: Uuid) -> Event {
        Event::OrderPaid(OrderPaid {
            order_id: ID,
            purchase_id,
            amount: usd(TOTAL),
            paid_at: t(6),
        })
    }

    fn fail(purchase_id: Uuid) -> Command {
        Command::RecordPaymentFailure(RecordPaymentFailure {
            order_id: ID,
            purchase_id,
            reason: PaymentFailureReason::parse("card_declined").unwrap(),
            expected_version: None,
            failed_at: t(7),
            payer: None,
        })
    }

    fn payment_failed(purchase_id: Uuid) -> Event {
        Event::OrderPaymentFailed(OrderPaymentFailed {
            order_id: ID,
            purchase_id,
            reason: PaymentFailureReason::parse("card_declined").unwrap(),
            amount: None,
            failed_at: t(7),
        })
    }

    fn refund(purchase_id: Uuid) -> Command {
        Command::RecordRefund(RecordRefund {
            order_id: ID,
            purchase_id,
            expected_version: None,
            refunded_at: t(8),
        })
    }

    fn refunded(purchase_id: Uuid) -> Event {
        Event::OrderRefunded(OrderRefunded {
            order_id: ID,
            purchase_id,
            refunded_at: t(8),
        })
    }

    /// A priced order's history up to `status`.
    fn history(status: OrderStatus) -> Vec<Event> {
        let mut events = vec![placed_priced()];
        let path: &[fn() -> Event] = match status {
            Pending => &[],
            Confirmed => &[confirmed],
            Processing => &[confirmed, started],
            Shipped => &[confirmed, started, shipped],
            Delivered => &[confirmed, started, shipped, delivered],
            Cancelled => &[confirmed, || cancelled(None)],
        };
        events.extend(path.iter().map(|event| event()));
        events
    }

    // Placing.

    #[test]
    fn placing_a_new_order_records_it_with_the_command_time() {
        let command = place(Uuid::from_u128(1), "John Doe");
        given::<Order>([])
            .when(Command::PlaceOrder(command.clone()))
            .then([placed(&command)]);
    }

    #[test]
    fn placing_the_same_order_twice_is_rejected() {
        let command = place(Uuid::from_u128(1), "John Doe");
        given::<Order>([placed(&command)])
            .when(Command::PlaceOrder(command.clone()))
            .then_rejected(Rejection::AlreadyPlaced {
                order_id: command.order_id,
            });
        given::<Order>(history(Delivered))
            .when(Command::PlaceOrder(place_priced(example_items())))
            .then_rejected(Rejection::AlreadyPlaced { order_id: ID });
    }

    #[test]
    fn a_placed_order_is_pending_unpaid_at_version_1() {
        let command = place(Uuid::from_u128(1), "John Doe");
        assert_eq!(
            Order::fold([&placed(&command)]),
            State::Placed {
                status: OrderStatus::Pending,
                payment_status: PaymentStatus::Pending,
                total: None,
                paid_with: None,
                owner: None,
                version: 1,
            }
        );
        let state = Order::fold(&history(Pending));
        assert_eq!(state.status(), Some(Pending));
        assert_eq!(state.payment_status(), Some(PaymentStatus::Pending));
        assert_eq!(state.version(), 1);
        assert!(matches!(state, State::Placed { total: Some(total), .. } if total == usd(TOTAL)));
        assert_eq!(State::NotPlaced.version(), 0);
        assert_eq!(State::NotPlaced.status(), None);
    }

    #[test]
    fn placing_with_items_prices_them_into_the_event() {
        given::<Order>([])
            .when(Command::PlaceOrder(place_priced(example_items())))
            .then([placed_priced()]);
    }

    #[test]
    fn an_order_of_100_placed_with_items_ships_free() {
        let Ok(events) = Order::decide(
            &State::NotPlaced,
            &Command::PlaceOrder(place_priced(vec![item("A", 4, 2500)])),
        ) else {
            panic!("rejected");
        };
        let [Event::OrderPlaced(OrderPlaced {
            details: Some(details), ..
        })] = &events[..]
        else {
            panic!("{events:?}");
        };
        assert_eq!(
            details.totals,
            Totals {
                subtotal: usd(10_000),
                tax: usd(800),
                shipping: usd(0),
                total: usd(10_800),
            }
        );
    }

    #[test]
    fn items_that_cannot_be_priced_refuse_the_order() {
        given::<Order>([])
            .when(Command::PlaceOrder(place_priced(vec![])))
            .then_rejected(Rejection::Pricing {
                order_id: ID,
                problem: PricingError::NoItems,
            });
        let mut items = example_items();
        items[1].unit_price = money(500, "EUR");
        given::<Order>([])
            .when(Command::PlaceOrder(place_priced(items)))
            .then_rejected(Rejection::Pricing {
                order_id: ID,
                problem: PricingError::CurrencyMismatch {
                    index: 1,
                    sku: Sku::parse("SKU-2").unwrap(),
                    expected: usd_currency(),
                    found: Currency::parse("currency", "EUR").unwrap(),
                },
            });
    }

    // The lifecycle.

    #[test]
    fn histories_reach_the_status_they_are_named_after() {
        for status in OrderStatus::ALL {
            let history = history(status);
            let state = Order::fold(&history);
            assert_eq!(state.status(), Some(status));
            assert_eq!(state.version(), history.len() as u64);
        }
    }

    #[test]
    fn each_status_lists_where_it_can_go() {
        for (status, next) in [
            (Pending, &[Confirmed, Cancelled][..]),
            (Confirmed, &[Processing, Cancelled][..]),
            (Processing, &[Shipped][..]),
            (Shipped, &[Delivered][..]),
            (Delivered, &[][..]),
            (Cancelled, &[][..]),
        ] {
            assert_eq!(status.next(), next, "{status}");
            for other in OrderStatus::ALL {
                assert_eq!(status.can_become(other), next.contains(&other));
            }
        }
        assert_eq!(
            OrderStatus::ALL.map(OrderStatus::as_str),
            [
                "pending",
                "confirmed",
                "processing",
                "shipped",
                "delivered",
                "cancelled"
            ]
        );
        assert_eq!(
            PaymentStatus::ALL.map(PaymentStatus::as_str),
            ["pending", "paid", "failed", "refunded"]
        );
        for status in OrderStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn every_allowed_transition_is_accepted() {
        given::<Order>(history(Pending)).when(confirm(None)).then([confirmed()]);
        given::<Order>(history(Confirmed)).when(start(None)).then([started()]);
        given::<Order>(history(Processing)).when(ship(None)).then([shipped()]);
        given::<Order>(history(Shipped)).when(deliver(None)).then([delivered()]);
        given::<Order>(history(Pending))
            .when(cancel(None))
            .then([cancelled(None)]);
        given::<Order>(history(Confirmed))
            .when(cancel(None))
            .then([cancelled(None)]);
    }

    #[test]
    fn every_status_and_command_pair_is_accepted_or_refused_as_the_table_says() {
        type Step = (&'static str, fn(Option<u64>) -> Command, fn() -> Event);
        let steps: [Step; 5] = [
            ("confirm", confirm, confirmed),
            ("start", start, started),
            ("ship", ship, shipped),
            ("deliver", deliver, delivered),
            ("cancel", cancel, || cancelled(None)),
        ];
        let allowed = [
            (Pending, "confirm"),
            (Pending, "cancel"),
            (Confirmed, "start"),
            (Confirmed, "cancel"),
            (Processing, "ship"),
            (Shipped, "deliver"),
        ];
        let mut accepted = 0;
        for status in OrderStatus::ALL {
            for (name, command, event) in steps {
                let scenario = given::<Order>(history(status)).when(command(None));
                if allowed.contains(&(status, name)) {
                    scenario.then([event()]);
                    accepted += 1;
                } else {
                    scenario.then_rejected(Rejection::IllegalTransition {
                        order_id: ID,
                        status,
                        allowed: status.next().to_vec(),
                    });
                }
            }
        }
        assert_eq!(accepted, allowed.len());
    }

    #[test]
    fn commands_for_an_order_never_placed_are_refused() {
        for command in [
            confirm(None),
            start(None),
            ship(None),
            deliver(None),
            cancel(None),
            pay(PURCHASE, usd(TOTAL)),
            fail(PURCHASE),
            refund(PURCHASE),
        ] {
            given::<Order>([])
                .when(command)
                .then_rejected(Rejection::NotFound { order_id: ID });
        }
    }

    #[test]
    fn an_illegal_transition_reads_as_what_is_allowed() {
        let rejection = Order::decide(&Order::fold(&history(Pending)), &ship(None)).unwrap_err();
        assert_eq!(
            rejection.to_string(),
            format!("order {ID} is pending; it can only become confirmed or cancelled")
        );
        let rejection = Order::decide(&Order::fold(&history(Delivered)), &cancel(None)).unwrap_err();
        assert_eq!(
            rejection.to_string(),
            format!("order {ID} is delivered; it can only become nothing")
        );
        assert_eq!(
            serde_json::to_value(&rejection).unwrap(),
            serde_json::json!({
                "type": "illegal_transition",
                "order_id": ID,
                "status": "delivered",
                "allowed": [],
            })
        );
    }

    // Cancelling.

    #[test]
    fn cancelling_an_unpaid_order_requests_no_refund() {
        let mut events = history(Pending);
        events.push(payment_failed(PURCHASE));
        given::<Order>(events).when(cancel(None)).then([cancelled(None)]);
    }

    #[test]
    fn cancelling_a_paid_order_names_the_purchase_to_refund() {
        let mut events = history(Confirmed);
        events.push(paid(PURCHASE));
        given::<Order>(events.clone())
            .when(cancel(None))
            .then([cancelled(Some(PURCHASE))]);
        // The refund is then recorded on the cancelled order.
        events.push(cancelled(Some(PURCHASE)));
        given::<Order>(events.clone())
            .when(refund(PURCHASE))
            .then([refunded(PURCHASE)]);
        events.push(refunded(PURCHASE));
        let state = Order::fold(&events);
        assert_eq!(state.status(), Some(Cancelled));
        assert_eq!(state.payment_status(), Some(PaymentStatus::Refunded));
    }

    #[test]
    fn a_refunded_order_cancelled_later_requests_no_second_refund() {
        let mut events = history(Confirmed);
        events.extend([paid(PURCHASE), refunded(PURCHASE)]);
        given::<Order>(events).when(cancel(None)).then([cancelled(None)]);
    }

    #[test]
    fn cancel_reasons_are_trimmed_and_bounded() {
        assert_eq!(CancelReason::parse(" too slow ").unwrap().as_str(), "too slow");
        assert_eq!(
            CancelReason::parse("").unwrap_err(),
            InvalidField::new("reason", FieldProblem::Blank)
        );
        assert!(CancelReason::parse(&"x".repeat(500)).is_ok());
        assert_eq!(
            CancelReason::parse(&"x".repeat(501)).unwrap_err(),
            InvalidField::new("reason", FieldProblem::TooLong { max: 500, actual: 501 })
        );
    }

    #[test]
    fn carrier_and_tracking_number_are_trimmed_and_bounded() {
        assert!(Carrier::parse(&"c".repeat(100)).is_ok());
        assert_eq!(
            Carrier::parse(&"c".repeat(101)).unwrap_err(),
            InvalidField::new("carrier", FieldProblem::TooLong { max: 100, actual: 101 })
        );
        assert_eq!(
            TrackingNumber::parse("  ").unwrap_err(),
            InvalidField::new("tracking_number", FieldProblem::Blank)
        );
        assert!(serde_json::from_str::<ShipOrder>(&format!(
            r#"{{"order_id":"{ID}","carrier":" ","tracking_number":"1","at":"2025-01-19T15:04:05Z"}}"#
        ))
        .is_err());
    }

    // Payment.

    #[test]
    fn a_payment_of_exactly_the_total_pays_the_order() {
        given::<Order>(history(Pending))
            .when(pay(PURCHASE, usd(TOTAL)))
            .then([paid(PURCHASE)]);
        // A payment may arrive at any point of the lifecycle before cancellation.
        given::<Order>(history(Delivered))
            .when(pay(PURCHASE, usd(TOTAL)))
            .then([paid(PURCHASE)]);
        let mut events = history(Pending);
        events.push(paid(PURCHASE));
        let state = Order::fold(&events);
        assert_eq!(state.payment_status(), Some(PaymentStatus::Paid));
        assert!(matches!(
            state,
            State::Placed {
                paid_with: Some(PURCHASE),
                ..
            }
        ));
    }

    #[test]
    fn a_payment_of_another_amount_or_currency_is_a_failed_payment() {
        for amount in [usd(TOTAL - 1), usd(TOTAL + 1), money(TOTAL, "EUR")] {
            given::<Order>(history(Pending))
                .when(pay(PURCHASE, amount))
                .then([Event::OrderPaymentFailed(OrderPaymentFailed {
                    order_id: ID,
                    purchase_id: PURCHASE,
                    reason: PaymentFailureReason::parse(AMOUNT_MISMATCH).unwrap(),
                    amount: Some(amount),
                    failed_at: t(6),
                })]);
        }
    }

    #[test]
    fn a_failed_payment_may_be_retried() {
        let mut events = history(Pending);
        events.push(payment_failed(PURCHASE));
        assert_eq!(Order::fold(&events).payment_status(), Some(PaymentStatus::Failed));
        given::<Order>(events.clone())
            .when(fail(OTHER_PURCHASE))
            .then([payment_failed(OTHER_PURCHASE)]);
        given::<Order>(events)
            .when(pay(OTHER_PURCHASE, usd(TOTAL)))
            .then([paid(OTHER_PURCHASE)]);
    }

    #[test]
    fn a_paid_order_takes_no_second_payment_or_failure() {
        let mut events = history(Pending);
        events.push(paid(PURCHASE));
        for command in [pay(OTHER_PURCHASE, usd(TOTAL)), fail(OTHER_PURCHASE)] {
            given::<Order>(events.clone())
                .when(command)
                .then_rejected(Rejection::IllegalPaymentTransition {
                    order_id: ID,
                    payment_status: PaymentStatus::Paid,
                    allowed: vec![PaymentStatus::Refunded],
                });
        }
    }

    #[test]
    fn payments_are_recorded_in_every_status_but_cancelled_and_refunds_in_every_status() {
        for status in OrderStatus::ALL {
            for (command, event) in [
                (pay(PURCHASE, usd(TOTAL)), paid(PURCHASE)),
                (fail(PURCHASE), payment_failed(PURCHASE)),
            ] {
                let scenario = given::<Order>(history(status)).when(command);
                if status == Cancelled {
                    scenario.then_rejected(Rejection::Cancelled { order_id: ID });
                } else {
                    scenario.then([event]);
                }
            }
            let mut events = history(status);
            events.insert(1, paid(PURCHASE));
            given::<Order>(events).when(refund(PURCHASE)).then([refunded(PURCHASE)]);
        }
    }

    #[test]
    fn a_cancelled_order_takes_no_payment() {
        for command in [pay(PURCHASE, usd(TOTAL)), fail(PURCHASE)] {
            given::<Order>(history(Cancelled))
                .when(command)
                .then_rejected(Rejection::Cancelled { order_id: ID });
        }
    }

    #[test]
    fn an_order_without_items_has_nothing_to_pay() {
        let command = place(ID, "John Doe");
        given::<Order>([placed(&command)])
            .when(pay(PURCHASE, usd(TOTAL)))
            .then_rejected(Rejection::NotPriced { order_id: ID });
        // A failure is still recorded as it happened.
        given::<Order>([placed(&command)])
            .when(fail(PURCHASE))
            .then([payment_failed(PURCHASE)]);
    }

    #[test]
    fn only_a_paid_order_is_refunded() {
        for (payments, payment_status, allowed) in [
            (
                vec![],
                PaymentStatus::Pending,
                vec![PaymentStatus::Paid, PaymentStatus::Failed],
            ),
            (
                vec![payment_failed(PURCHASE)],
                PaymentStatus::Failed,
                vec![PaymentStatus::Paid, PaymentStatus::Failed],
            ),
            (
                vec![paid(PURCHASE), refunded(PURCHASE)],
                PaymentStatus::Refunded,
                vec![],
            ),
        ] {
            let mut events = history(Pending);
            events.extend(payments);
            given::<Order>(events)
                .when(refund(PURCHASE))
                .then_rejected(Rejection::IllegalPaymentTransition {
                    order_id: ID,
                    payment_status,
                    allowed,
                });
        }
        let mut events = history(Delivered);
        events.push(paid(PURCHASE));
        given::<Order>(events.clone())
            .when(refund(PURCHASE))
            .then([refunded(PURCHASE)]);
        given::<Order>(events)
            .when(refund(OTHER_PURCHASE))
            .then_rejected(Rejection::WrongPurchase {
                order_id: ID,
                purchase_id: OTHER_PURCHASE,
                paid_with: PURCHASE,
            });
    }

    // If-Match.

    #[test]
    fn a_command_on_a_stale_version_is_refused() {
        // Placed (1), confirmed (2).
        let events = history(Confirmed);
        given::<Order>(events.clone())
            .when(start(Some(1)))
            .then_rejected(Rejection::StaleVersion { expected: 1, actual: 2 });
        given::<Order>(events.clone())
            .when(start(Some(3)))
            .then_rejected(Rejection::StaleVersion { expected: 3, actual: 2 });
        given::<Order>(events.clone()).when(start(Some(2))).then([started()]);
        given::<Order>(events.clone()).when(start(None)).then([started()]);
        // The version is checked before the transition: the client's view is what is wrong.
        given::<Order>(events.clone())
            .when(deliver(Some(1)))
            .then_rejected(Rejection::StaleVersion { expected: 1, actual: 2 });
        // Payment commands carry it too.
        let Command::RecordPayment(payment) = pay(PURCHASE, usd(TOTAL)) else {
            unreachable!()
        };
        given::<Order>(events)
            .when(Command::RecordPayment(RecordPayment {
                expected_version: Some(5),
                ..payment
            }))
            .then_rejected(Rejection::StaleVersion { expected: 5, actual: 2 });
    }

    #[test]
    fn every_event_counts_towards_the_version() {
        let mut events = history(Delivered);
        events.extend([payment_failed(PURCHASE), paid(PURCHASE), refunded(PURCHASE)]);
        assert_eq!(Order::fold(&events).version(), 8);
        // Even a fact that changes nothing (a confirmation of a delivered order).
        events.push(confirmed());
        let state = Order::fold(&events);
        assert_eq!((state.version(), state.status()), (9, Some(Delivered)));
    }

    // The wire.

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(OrderName::parse("  John Doe ").unwrap().as_str(), "John Doe");
        assert_eq!(OrderName::parse(&"x".repeat(200)).unwrap().as_str().len(), 200);
        assert_eq!(
            OrderName::parse(&"x".repeat(201)).unwrap_err(),
            InvalidField::new("name", FieldProblem::TooLong { max: 200, actual: 201 })
        );
        assert_eq!(
            OrderName::parse("   ").unwrap_err(),
            InvalidField::new("name", FieldProblem::Blank)
        );
    }

    #[test]
    fn note_is_bounded_but_kept_as_written() {
        assert_eq!(OrderNote::parse(" hi ").unwrap().as_str(), " hi ");
        assert!(OrderNote::parse(&"é".repeat(2_000)).is_ok());
        assert_eq!(
            OrderNote::parse(&"é".repeat(2_001)).unwrap_err(),
            InvalidField::new(
                "note",
                FieldProblem::TooLong {
                    max: 2_000,
                    actual: 2_001
                }
            )
        );
    }

    fn every_command() -> Vec<Command> {
        vec![
            Command::PlaceOrder(place(ID, "Zoë")),
            Command::PlaceOrder(place_priced(example_items())),
            confirm(Some(1)),
            start(None),
            ship(Some(3)),
            deliver(None),
            cancel(Some(2)),
            pay(PURCHASE, usd(TOTAL)),
            fail(PURCHASE),
            refund(PURCHASE),
        ]
    }

    fn every_event() -> Vec<Event> {
        vec![
            placed(&place(ID, "Zoë")),
            placed_priced(),
            confirmed(),
            started(),
            shipped(),
            delivered(),
            cancelled(Some(PURCHASE)),
            cancelled(None),
            paid(PURCHASE),
            payment_failed(PURCHASE),
            refunded(PURCHASE),
        ]
    }

    #[test]
    fn commands_and_events_round_trip_through_the_wire_format() {
        for command in every_command() {
            let decoded = Command::decode(command.message_type(), &command.encode()).unwrap();
            assert_eq!(decoded, command);
            assert_eq!(command.aggregate_id(), ID);
        }
        for event in every_event() {
            let decoded = Event::decode(event.message_type(), &event.encode()).unwrap();
            assert_eq!(decoded, event);
            assert_eq!(event.aggregate_id(), ID);
        }
    }

    #[test]
    fn every_message_has_its_versioned_type_name() {
        let commands: Vec<&str> = every_command().iter().map(Message::message_type).collect();
        assert_eq!(
            commands,
            [
                "orderstream.order.place.v1",
                "orderstream.order.place.v1",
                "orderstream.order.confirm.v1",
                "orderstream.order.start-processing.v1",
                "orderstream.order.ship.v1",
                "orderstream.order.deliver.v1",
                "orderstream.order.cancel.v1",
                "orderstream.order.record-payment.v1",
                "orderstream.order.record-payment-failure.v1",
                "orderstream.order.record-refund.v1",
            ]
        );
        let events: Vec<&str> = every_event().iter().map(Message::message_type).collect();
        assert_eq!(
            events,
            [
                "orderstream.order.placed.v3",
                "orderstream.order.placed.v3",
                "orderstream.order.confirmed.v1",
                "orderstream.order.processing-started.v1",
                "orderstream.order.shipped.v1",
                "orderstream.order.delivered.v1",
                "orderstream.order.cancelled.v1",
                "orderstream.order.cancelled.v1",
                "orderstream.order.paid.v1",
                "orderstream.order.payment-failed.v1",
                "orderstream.order.refunded.v1",
            ]
        );
        let times: Vec<DateTime<Utc>> = every_event().iter().map(Event::occurred_at).collect();
        assert_eq!(
            times,
            [t(0), t(0), t(1), t(2), t(3), t(4), t(5), t(5), t(6), t(7), t(8)]
        );
    }

    #[test]
    fn orders_without_items_keep_the_seed_wire_format() {
        // The checked-in fixtures of both versions, byte for byte.
        let place_v1 = br#"{"order_id":"dcc4717c-20c6-45db-ad30-f29761383d70","name":"John Doe","note":"First order","placed_at":"2025-01-19T15:04:05.000000Z"}"#;
        let Command::PlaceOrder(command) = Command::decode(PLACE_ORDER_V1, place_v1).unwrap() else {
            unreachable!()
        };
        assert_eq!(command.details, None);
        let without_note =
            r#"{"order_id":"8daafe3b-2a39-5aea-82f7-b0d0005ce854","name":"Zoë","placed_at":"2026-11-21T20:07:49.090451Z"}"#.as_bytes();
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, without_note).unwrap() else {
            unreachable!()
        };
        assert_eq!((event.note, event.details), (None, None));
        assert_eq!(event.channel, Channel::Api);
        // And an order without items is written as before, plus its channel (v2).
        let json: serde_json::Value = serde_json::from_slice(&placed(&place(ID, "Zoë")).encode()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "order_id": ID,
                "name": "Zoë",
                "note": "First order",
                "placed_at": "2025-01-19T15:04:05Z",
                "channel": "api",
            })
        );
    }

    #[test]
    fn priced_details_travel_with_their_totals() {
        let json: serde_json::Value = serde_json::from_slice(&placed_priced().encode()).unwrap();
        assert_eq!(
            json["details"],
            serde_json::json!({
                "user_id": USER,
                "currency": "USD",
                "items": [
                    {"sku": "SKU-1", "name": "Item SKU-1", "quantity": 2, "unit_price": {"minor": 1234, "currency": "USD"}},
                    {"sku": "SKU-2", "name": "Item SKU-2", "quantity": 1, "unit_price": {"minor": 500, "currency": "USD"}},
                ],
                "totals": {
                    "subtotal": {"minor": 2968, "currency": "USD"},
                    "tax": {"minor": 237, "currency": "USD"},
                    "shipping": {"minor": 999, "currency": "USD"},
                    "total": {"minor": 4204, "currency": "USD"},
                },
            })
        );
    }

    #[test]
    fn decoding_rechecks_the_rules() {
        let data =
            br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"  ","placed_at":"2025-01-19T15:04:05Z"}"#;
        assert!(matches!(
            Event::decode(ORDER_PLACED_V1, data),
            Err(DecodeError::Malformed { .. })
        ));
        let blank_v2 = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"  ","placed_at":"2025-01-19T15:04:05Z","channel":"web"}"#;
        assert!(matches!(
            Event::decode(ORDER_PLACED_V2, blank_v2),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            Event::decode("orderstream.order.vanished.v1", data),
            Err(DecodeError::UnknownType(_))
        ));
        let zero_quantity = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"A","placed_at":"2025-01-19T15:04:05Z","details":{"currency":"USD","items":[{"sku":"A","name":"A","quantity":0,"unit_price":{"minor":1,"currency":"USD"}}]}}"#;
        assert!(matches!(
            Command::decode(PLACE_ORDER_V1, zero_quantity),
            Err(DecodeError::Malformed { .. })
        ));
        let blank_reason =
            br#"{"order_id":"00000000-0000-0000-0000-000000000001","reason":" ","at":"2025-01-19T15:04:05Z"}"#;
        assert!(matches!(
            Command::decode(CANCEL_ORDER_V1, blank_reason),
            Err(DecodeError::Malformed { .. })
        ));
    }

    // Evolution: `orderstream.order.placed.v1` is upcast, `v2` is what is written.

    const PLACED_V1: &[u8] = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"Jane","note":"hi","placed_at":"2025-01-19T15:04:05Z","details":{"user_id":"00000000-0000-0000-0000-000000000004","currency":"USD","items":[{"sku":"SKU-1","name":"Item SKU-1","quantity":2,"unit_price":{"minor":1234,"currency":"USD"}}],"totals":{"subtotal":{"minor":2468,"currency":"USD"},"tax":{"minor":197,"currency":"USD"},"shipping":{"minor":999,"currency":"USD"},"total":{"minor":3664,"currency":"USD"}}}}"#;

    #[test]
    fn a_v1_order_placed_is_upcast_to_the_current_shape_placed_through_the_api() {
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, PLACED_V1).unwrap() else {
            unreachable!()
        };
        assert_eq!(event.channel, Channel::Api);
        assert_eq!(event.order_id, ID);
        assert_eq!(event.name.as_str(), "Jane");
        assert_eq!(event.note.as_ref().map(OrderNote::as_str), Some("hi"));
        let details = event.details.as_ref().unwrap();
        assert_eq!((details.user_id, details.totals.total), (Some(USER), usd(3664)));
        // The upcast keeps every v1 field and only adds the channel.
        let v1: upcast::OrderPlacedV1 = serde_json::from_slice(PLACED_V1).unwrap();
        assert_eq!(
            upcast::order_placed_v1(v1.clone()),
            OrderPlaced {
                order_id: v1.order_id,
                name: v1.name,
                note: v1.note,
                placed_at: v1.placed_at,
                details: v1.details,
                channel: Channel::Api,
                user_id: Some(USER),
            }
        );
        // Once decoded it is written back as v3 only: nothing downstream sees v1.
        let event = Event::OrderPlaced(event);
        assert_eq!(event.message_type(), ORDER_PLACED_V3);
        let json: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(json["channel"], "api");
        assert_eq!(json["user_id"], USER.to_string());
        assert_eq!(Event::decode(ORDER_PLACED_V3, &event.encode()).unwrap(), event);
    }

    #[test]
    fn v2_carries_its_channel_and_requires_it() {
        for channel in Channel::ALL {
            let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
            json["channel"] = channel.as_str().into();
            let data = serde_json::to_vec(&json).unwrap();
            let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &data).unwrap() else {
                unreachable!()
            };
            assert_eq!(event.channel, channel);
            assert_eq!(Channel::parse("channel", channel.as_str()), Ok(channel));
            assert_eq!(channel.to_string(), channel.as_str());
        }
        // v2 without a channel is not v2; an unknown channel is malformed.
        assert!(matches!(
            Event::decode(ORDER_PLACED_V2, PLACED_V1),
            Err(DecodeError::Malformed { .. })
        ));
        let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
        json["channel"] = "fax".into();
        assert!(matches!(
            Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(Channel::parse("channel", "fax").unwrap_err().field, "channel");
        // A v1 event that happens to hold a `channel` is still a v1 event: placed through the API.
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, &serde_json::to_vec(&json).unwrap()).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(event.channel, Channel::Api);
    }

    #[test]
    fn a_v2_order_placed_belongs_to_the_user_of_its_details_or_to_nobody() {
        let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
        json["channel"] = "web".into();
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap()
        else {
            unreachable!()
        };
        assert_eq!((event.user_id, event.channel), (Some(USER), Channel::Web));
        json.as_object_mut().unwrap().remove("details");
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(event.user_id, None);
        // A v2 event never gains an owner from a stray top-level `user_id`: v2 had none.
        json["user_id"] = OTHER_USER.to_string().into();
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(event.user_id, None);
    }

    #[test]
    fn an_order_belongs_to_the_user_it_is_placed_for_with_or_without_items() {
        let seed = PlaceOrder {
            user_id: Some(USER),
            ..place(ID, "Jane")
        };
        let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(seed)).unwrap();
        assert!(matches!(
            &events[..],
            [Event::OrderPlaced(OrderPlaced {
                user_id: Some(USER),
                details: None,
                ..
            })]
        ));
        let state = events.iter().fold(State::NotPlaced, Order::evolve);
        assert!(matches!(state, State::Placed { owner: Some(USER), .. }));
        // Priced without a top-level user: the user of the details owns it.
        let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(place_priced(example_items()))).unwrap();
        assert!(matches!(
            &events[..],
            [Event::OrderPlaced(OrderPlaced {
                user_id: Some(USER),
                ..
            })]
        ));
    }

    fn cancel_by(acting_user: Uuid, expected_version: Option<u64>) -> Command {
        let Command::CancelOrder(cancel) = cancel(expected_version) else {
            unreachable!()
        };
        Command::CancelOrder(CancelOrder {
            acting_user: Some(acting_user),
            ..cancel
        })
    }

    #[test]
    fn only_the_owner_cancels_as_a_user_and_staff_cancel_any_order() {
        given::<Order>([placed_priced(), paid(PURCHASE)])
            .when(cancel_by(OTHER_USER, None))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        // Refused before the version check, whose answer would tell the order exists.
        given::<Order>([placed_priced()])
            .when(cancel_by(OTHER_USER, Some(7)))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        given::<Order>([placed_priced(), paid(PURCHASE)])
            .when(cancel_by(USER, None))
            .then([cancelled(Some(PURCHASE))]);
        given::<Order>([placed_priced()])
            .when(cancel(None))
            .then([cancelled(None)]);
        // An order placed before orders had owners is cancelled by staff only.
        given::<Order>([placed(&place(ID, "Jane"))])
            .when(cancel_by(USER, None))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        // A missing order is missing, whoever asks.
        given::<Order>([])
            .when(cancel_by(USER, None))
            .then_rejected(Rejection::NotFound { order_id: ID });
    }

    fn paid_by(payer: Option<Uuid>, command: Command) -> Command {
        match command {
            Command::RecordPayment(payment) => Command::RecordPayment(RecordPayment { payer, ..payment }),
            Command::RecordPaymentFailure(failure) => {
                Command::RecordPaymentFailure(RecordPaymentFailure { payer, ..failure })
            }
            other => other,
        }
    }

    #[test]
    fn only_a_purchase_of_the_owner_settles_the_payment_of_an_order() {
        // Another user's purchase naming the order neither pays it nor fails its payment…
        given::<Order>([placed_priced()])
            .when(paid_by(Some(OTHER_USER), pay(PURCHASE, usd(TOTAL))))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        given::<Order>([placed_priced()])
            .when(paid_by(Some(OTHER_USER), fail(PURCHASE)))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        // …before any other check that would tell what state the order is in.
        given::<Order>([placed_priced(), paid(PURCHASE)])
            .when(paid_by(Some(OTHER_USER), pay(OTHER_PURCHASE, usd(TOTAL))))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        given::<Order>([placed_priced()])
            .when(paid_by(
                Some(OTHER_USER),
                Command::RecordPayment(RecordPayment {
                    expected_version: Some(7),
                    ..match pay(PURCHASE, usd(TOTAL)) {
                        Command::RecordPayment(payment) => payment,
                        _ => unreachable!(),
                    }
                }),
            ))
            .then_rejected(Rejection::NotOwner { order_id: ID });
        // The owner's own purchase pays, or fails to pay, as always.
        given::<Order>([placed_priced()])
            .when(paid_by(Some(USER), pay(PURCHASE, usd(TOTAL))))
            .then([paid(PURCHASE)]);
        given::<Order>([placed_priced()])
            .when(paid_by(Some(USER), fail(PURCHASE)))
            .then([payment_failed(PURCHASE)]);
        // A purchase whose events did not name the buyer is taken as before.
        given::<Order>([placed_priced()])
            .when(paid_by(None, pay(PURCHASE, usd(TOTAL))))
            .then([paid(PURCHASE)]);
        given::<Order>([placed_priced()])
            .when(paid_by(None, fail(PURCHASE)))
            .then([payment_failed(PURCHASE)]);
        // So is an order placed before orders had owners.
        let Event::OrderPlaced(priced) = placed_priced() else {
            unreachable!()
        };
        let ownerless = Event::OrderPlaced(OrderPlaced {
            user_id: None,
            ..priced
        });
        given::<Order>([ownerless])
            .when(paid_by(Some(OTHER_USER), pay(PURCHASE, usd(TOTAL))))
            .then([paid(PURCHASE)]);
    }

    #[test]
    fn the_channel_of_the_command_is_the_channel_of_the_event_and_defaults_to_api() {
        let plain = place(ID, "Jane");
        let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(plain.clone())).unwrap();
        assert!(matches!(
            &events[..],
            [Event::OrderPlaced(OrderPlaced {
                channel: Channel::Api,
                ..
            })]
        ));
        let from_mobile = PlaceOrder {
            channel: Some(Channel::Mobile),
            ..plain
        };
        let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(from_mobile.clone())).unwrap();
        assert!(matches!(
            &events[..],
            [Event::OrderPlaced(OrderPlaced {
                channel: Channel::Mobile,
                ..
            })]
        ));
        // The command stays v1: the channel is optional, omitted when not given, and old commands decode.
        let command = Command::PlaceOrder(from_mobile);
        assert_eq!(command.message_type(), PLACE_ORDER_V1);
        assert_eq!(Command::decode(PLACE_ORDER_V1, &command.encode()).unwrap(), command);
        let json: serde_json::Value = serde_json::from_slice(&Command::PlaceOrder(place(ID, "Jane")).encode()).unwrap();
        assert!(json.get("channel").is_none());
    }

    #[test]
    fn rejections_travel_tagged_and_read_naturally() {
        for (rejection, json, text) in [
            (
                Rejection::StaleVersion { expected: 1, actual: 2 },
                serde_json::json!({"type": "stale_version", "expected": 1, "actual": 2}),
                "order is at version 2, not the expected 1".to_owned(),
            ),
            (
                Rejection::IllegalPaymentTransition {
                    order_id: ID,
                    payment_status: PaymentStatus::Paid,
                    allowed: vec![PaymentStatus::Refunded],
                },
                serde_json::json!({"type": "illegal_payment_transition", "order_id": ID, "payment_status": "paid", "allowed": ["refunded"]}),
                format!("payment of order {ID} is paid; it can only become refunded"),
            ),
            (
                Rejection::Pricing {
                    order_id: ID,
                    problem: PricingError::NoItems,
                },
                serde_json::json!({"type": "pricing", "order_id": ID, "problem": {"type": "no_items"}}),
                format!("order {ID} cannot be priced: an order needs at least one line item"),
            ),
            (
                Rejection::WrongPurchase {
                    order_id: ID,
                    purchase_id: OTHER_PURCHASE,
                    paid_with: PURCHASE,
                },
                serde_json::json!({"type": "wrong_purchase", "order_id": ID, "purchase_id": OTHER_PURCHASE, "paid_with": PURCHASE}),
                format!("order {ID} was paid by purchase {PURCHASE}, not {OTHER_PURCHASE}"),
            ),
        ] {
            assert_eq!(serde_json::to_value(&rejection).unwrap(), json);
            assert_eq!(serde_json::from_value::<Rejection>(json).unwrap(), rejection);
            assert_eq!(rejection.to_string(), text);
        }
    }

    // Properties.

    /// Any command for order `ID`, some with a random `If-Match`.
    fn any_command() -> impl Strategy<Value = Command> {
        let version = proptest::option::of(0_u64..8);
        let amount = prop_oneof![Just(usd(TOTAL)), (0_i64..10_000).prop_map(usd)];
        let purchase = (2_u128..4).prop_map(Uuid::from_u128);
        prop_oneof![
            Just(Command::PlaceOrder(place_priced(example_items()))),
            Just(Command::PlaceOrder(place(ID, "Jane"))),
            version.clone().prop_map(confirm),
            version.clone().prop_map(start),
            version.clone().prop_map(ship),
            version.clone().prop_map(deliver),
            version.clone().prop_map(cancel),
            (purchase.clone(), amount).prop_map(|(p, a)| pay(p, a)),
            purchase.clone().prop_map(fail),
            purchase.prop_map(refund),
        ]
    }

    fn any_event() -> impl Strategy<Value = Event> {
        proptest::sample::select(every_event())
    }

    /// Checks one step of the state only moved along allowed edges.
    fn moved_along_edges(before: &State, after: &State) -> Result<(), TestCaseError> {
        if let (Some(from), Some(to)) = (before.status(), after.status()) {
            prop_assert!(from == to || from.can_become(to), "{} -> {}", from, to);
        }
        if let (Some(from), Some(to)) = (before.payment_status(), after.payment_status()) {
            prop_assert!(from == to || from.can_become(to), "payment {} -> {}", from, to);
        }
        prop_assert!(
            before.status().is_none() || after.status().is_some(),
            "an order was unplaced"
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn any_accepted_name_is_trimmed_and_within_bounds(raw in "\\PC{0,260}") {
            match OrderName::parse(&raw) {
                Ok(name) => {
                    prop_assert_eq!(name.as_str(), raw.trim());
                    prop_assert!((1..=OrderName::MAX_CHARS).contains(&name.as_str().chars().count()));
                }
                Err(err) => prop_assert_eq!(err.field, "name"),
            }
        }

        #[test]
        fn an_order_is_placed_exactly_once_whatever_is_retried(ids in proptest::collection::vec(0u128..8, 1..40)) {
            let mut states = std::collections::HashMap::<u128, State>::new();
            let mut accepted = std::collections::HashSet::new();
            for id in ids {
                let command = Command::PlaceOrder(place(Uuid::from_u128(id), "Jane"));
                let state = states.remove(&id).unwrap_or_default();
                match Order::decide(&state, &command) {
                    Ok(events) => {
                        prop_assert!(accepted.insert(id), "order {} placed twice", id);
                        states.insert(id, events.iter().fold(state, Order::evolve));
                    }
                    Err(Rejection::AlreadyPlaced { order_id }) => {
                        prop_assert_eq!(order_id, Uuid::from_u128(id));
                        prop_assert!(accepted.contains(&id));
                        states.insert(id, state);
                    }
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }

        #[test]
        fn replaying_decided_events_only_moves_along_allowed_edges(
            commands in proptest::collection::vec(any_command(), 1..60),
        ) {
            let mut state = State::default();
            let mut log = Vec::new();
            for command in commands {
                match Order::decide(&state, &command) {
                    Ok(events) => {
                        prop_assert_eq!(events.len(), 1);
                        for event in events {
                            prop_assert_eq!(event.aggregate_id(), ID);
                            let next = Order::evolve(state.clone(), &event);
                            moved_along_edges(&state, &next)?;
                            prop_assert_eq!(next.version(), state.version() + 1);
                            prop_assert_ne!(next.status(), None);
                            state = next;
                            log.push(event);
                        }
                    }
                    Err(Rejection::StaleVersion { expected, actual }) => {
                        prop_assert_ne!(expected, actual);
                        prop_assert_eq!(actual, state.version());
                    }
                    Err(_) => {}
                }
            }
            // Replaying the log, through the wire format, rebuilds the same state.
            let replayed: Vec<Event> = log
                .iter()
                .map(|e| Event::decode(e.message_type(), &e.encode()).unwrap())
                .collect();
            prop_assert_eq!(Order::fold(&replayed), state.clone());
            prop_assert_eq!(state.version(), log.len() as u64);
        }

        #[test]
        fn folding_any_events_at_all_never_panics_nor_skips_an_edge(
            events in proptest::collection::vec(any_event(), 0..40),
        ) {
            let mut state = State::default();
            for event in &events {
                let next = Order::evolve(state.clone(), event);
                moved_along_edges(&state, &next)?;
                state = next;
            }
        }
    }
}
