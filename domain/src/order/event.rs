//! What happened to an order, and the events' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::upcast::{self, OrderPlacedV1, OrderPlacedV2};
use super::{
    CancelReason, Carrier, Channel, OrderName, OrderNote, PaymentFailureReason, PricedOrderDetails, TrackingNumber,
};
use crate::message::messages;
use crate::money::Money;
use crate::pricing::Sku;
use crate::product::StockLine;

messages! {
    pub enum Event by order_id {
        /// The version the decider writes.
        ORDER_PLACED_V3 = "orderstream.order.placed.v3" =>
        /// An order was placed. `placed_at` is the event time read models use, `channel` where it was
        /// placed, `user_id` whose it is. Written as `orderstream.order.placed.v3`; a v1 event (without
        /// `channel`) or v2 event (owner only inside the details) decodes to this shape (see `upcast`).
        pub struct OrderPlaced {
            order_id: Uuid,
            name: OrderName,
            note: Option<OrderNote>,
            placed_at: DateTime<Utc>,
            /// The items and their totals, when the order was placed with items.
            details: Option<PricedOrderDetails>,
            /// Where the order was placed.
            channel: Channel,
            /// The user the order belongs to; absent only for orders placed before every order had one
            /// and placed without a user.
            user_id: Option<Uuid>,
            /// The items the catalog sells, one line per SKU: the stock reservation saga reserves
            /// them. Absent when no item is in the catalog: the order's stock is not tracked.
            catalog_items: Option<Vec<StockLine>>,
        }

        ORDER_CONFIRMED_V1 = "orderstream.order.confirmed.v1" =>
        pub struct OrderConfirmed { order_id: Uuid, confirmed_at: DateTime<Utc> }

        ORDER_PROCESSING_STARTED_V1 = "orderstream.order.processing-started.v1" =>
        pub struct OrderProcessingStarted { order_id: Uuid, started_at: DateTime<Utc> }

        ORDER_SHIPPED_V1 = "orderstream.order.shipped.v1" =>
        pub struct OrderShipped {
            order_id: Uuid,
            carrier: Carrier,
            tracking_number: TrackingNumber,
            shipped_at: DateTime<Utc>,
            /// The catalog items whose reserved stock leaves with the order.
            stock_shipped: Option<Vec<Sku>>,
        }

        ORDER_DELIVERED_V1 = "orderstream.order.delivered.v1" =>
        pub struct OrderDelivered { order_id: Uuid, delivered_at: DateTime<Utc> }

        ORDER_CANCELLED_V1 = "orderstream.order.cancelled.v1" =>
        /// An order was cancelled. When it had been paid, `refund_requested_for` names the purchase to
        /// refund; the refund itself is recorded later, as `orderstream.order.refunded.v1`.
        pub struct OrderCancelled {
            order_id: Uuid,
            reason: CancelReason,
            refund_requested_for: Option<Uuid>,
            /// What to refund of that purchase: the amount it paid.
            refund_amount: Option<Money>,
            cancelled_at: DateTime<Utc>,
            /// The catalog items whose stock the cancellation gives back, whether or not it was
            /// reserved yet.
            stock_released: Option<Vec<Sku>>,
        }

        ORDER_PAID_V1 = "orderstream.order.paid.v1" =>
        /// The order's total was paid by purchase `purchase_id`.
        pub struct OrderPaid { order_id: Uuid, purchase_id: Uuid, amount: Money, paid_at: DateTime<Utc> }

        ORDER_PAYMENT_FAILED_V1 = "orderstream.order.payment-failed.v1" =>
        /// A payment for the order failed. For `amount_mismatch`, `amount` is what was paid instead of
        /// the total (money that may have to be returned).
        pub struct OrderPaymentFailed {
            order_id: Uuid,
            purchase_id: Uuid,
            reason: PaymentFailureReason,
            amount: Option<Money>,
            failed_at: DateTime<Utc>,
        }

        ORDER_REFUNDED_V1 = "orderstream.order.refunded.v1" =>
        /// The purchase that paid for the order was refunded.
        pub struct OrderRefunded { order_id: Uuid, purchase_id: Uuid, refunded_at: DateTime<Utc> }

        ORDER_ITEM_RESERVED_V1 = "orderstream.order.item-reserved.v1" =>
        /// The stock of catalog item `sku` is held for the order.
        pub struct OrderItemReserved { order_id: Uuid, sku: Sku, reserved_at: DateTime<Utc> }

        ORDER_STOCK_RESERVED_V1 = "orderstream.order.stock-reserved.v1" =>
        /// Every catalog item of the order is held: its `stock_status` is `reserved`.
        pub struct OrderStockReserved { order_id: Uuid, reserved_at: DateTime<Utc> }
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
            Self::OrderItemReserved(e) => e.reserved_at,
            Self::OrderStockReserved(e) => e.reserved_at,
        }
    }
}
