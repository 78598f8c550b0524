//! What happened to an order, and the events' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::upcast::{self, OrderPlacedV1, OrderPlacedV2};
use super::{
    CancelReason, Carrier, Channel, OrderName, OrderNote, PaymentFailureReason, PricedOrderDetails, TrackingNumber,
};
use crate::message::{messages, payloads};
use crate::money::Money;

payloads! {
    /// An order was placed. `placed_at` is the event time read models use, `channel` where it was
    /// placed, `user_id` whose it is. Written as `orderstream.order.placed.v3`; a v1 event (without
    /// `channel`) or v2 event (owner only inside the details) decodes to this shape (see `upcast`).
    pub struct OrderPlaced {
        pub order_id: Uuid,
        pub name: OrderName,
        pub note: Option<OrderNote>,
        pub placed_at: DateTime<Utc>,
        /// The items and their totals, when the order was placed with items.
        pub details: Option<PricedOrderDetails>,
        /// Where the order was placed.
        pub channel: Channel,
        /// The user the order belongs to; absent only for orders placed before every order had one
        /// and placed without a user.
        pub user_id: Option<Uuid>,
    }

    pub struct OrderConfirmed {
        pub order_id: Uuid,
        pub confirmed_at: DateTime<Utc>,
    }

    pub struct OrderProcessingStarted {
        pub order_id: Uuid,
        pub started_at: DateTime<Utc>,
    }

    pub struct OrderShipped {
        pub order_id: Uuid,
        pub carrier: Carrier,
        pub tracking_number: TrackingNumber,
        pub shipped_at: DateTime<Utc>,
    }

    pub struct OrderDelivered {
        pub order_id: Uuid,
        pub delivered_at: DateTime<Utc>,
    }

    /// An order was cancelled. When it had been paid, `refund_requested_for` names the purchase to
    /// refund; the refund itself is recorded later, as `orderstream.order.refunded.v1`.
    pub struct OrderCancelled {
        pub order_id: Uuid,
        pub reason: CancelReason,
        pub refund_requested_for: Option<Uuid>,
        /// What to refund of that purchase: the amount it paid.
        pub refund_amount: Option<Money>,
        pub cancelled_at: DateTime<Utc>,
    }

    /// The order's total was paid by purchase `purchase_id`.
    pub struct OrderPaid {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub amount: Money,
        pub paid_at: DateTime<Utc>,
    }

    /// A payment for the order failed. For `amount_mismatch`, `amount` is what was paid instead of
    /// the total (money that may have to be returned).
    pub struct OrderPaymentFailed {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub reason: PaymentFailureReason,
        pub amount: Option<Money>,
        pub failed_at: DateTime<Utc>,
    }

    /// The purchase that paid for the order was refunded.
    pub struct OrderRefunded {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub refunded_at: DateTime<Utc>,
    }
}

messages! {
    pub enum Event by order_id {
        /// Type name of [`OrderPlaced`] on the events topic (`ce_type`): the version the decider writes.
        ORDER_PLACED_V3 = "orderstream.order.placed.v3" => OrderPlaced,
        /// Type name of [`OrderConfirmed`].
        ORDER_CONFIRMED_V1 = "orderstream.order.confirmed.v1" => OrderConfirmed,
        /// Type name of [`OrderProcessingStarted`].
        ORDER_PROCESSING_STARTED_V1 = "orderstream.order.processing-started.v1" => OrderProcessingStarted,
        /// Type name of [`OrderShipped`].
        ORDER_SHIPPED_V1 = "orderstream.order.shipped.v1" => OrderShipped,
        /// Type name of [`OrderDelivered`].
        ORDER_DELIVERED_V1 = "orderstream.order.delivered.v1" => OrderDelivered,
        /// Type name of [`OrderCancelled`].
        ORDER_CANCELLED_V1 = "orderstream.order.cancelled.v1" => OrderCancelled,
        /// Type name of [`OrderPaid`].
        ORDER_PAID_V1 = "orderstream.order.paid.v1" => OrderPaid,
        /// Type name of [`OrderPaymentFailed`].
        ORDER_PAYMENT_FAILED_V1 = "orderstream.order.payment-failed.v1" => OrderPaymentFailed,
        /// Type name of [`OrderRefunded`].
        ORDER_REFUNDED_V1 = "orderstream.order.refunded.v1" => OrderRefunded,
    }
    superseded {
        /// Type name of the second version of [`OrderPlaced`], written before every order had an
        /// owner (`user_id`) outside its details. Decoded only: [`upcast::order_placed_v2`] turns
        /// it into the current shape.
        ORDER_PLACED_V2 = "orderstream.order.placed.v2" => OrderPlaced(OrderPlacedV2, upcast::order_placed_v2),
        /// Type name of the first version of [`OrderPlaced`], written before orders had a
        /// [`Channel`]. Decoded only, never written: [`upcast::order_placed_v1`] turns it into the
        /// current shape.
        ORDER_PLACED_V1 = "orderstream.order.placed.v1" => OrderPlaced(OrderPlacedV1, upcast::order_placed_v1),
    }
}

impl Event {
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
