//! What clients and reactors ask of an order, and the commands' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    CancelReason, Carrier, Channel, OrderDetails, OrderName, OrderNote, OrderStatus, PaymentFailureReason,
    TrackingNumber,
};
use crate::message::messages;
use crate::money::Money;
use crate::pricing::Sku;
use crate::product::StockLine;

messages! {
    pub enum Command by order_id {
        PLACE_ORDER_V1 = "orderstream.order.place.v1" =>
        /// Place a new order. The edge stamps `placed_at` and picks `order_id`. Without `details` the
        /// order has no items and no total (the seed's orders), and takes no payment.
        pub struct PlaceOrder {
            order_id: Uuid,
            name: OrderName,
            note: Option<OrderNote>,
            placed_at: DateTime<Utc>,
            details: Option<OrderDetails>,
            /// Where the order is placed; [`Channel::Api`] when not said. Optional, so the command keeps
            /// its type name (`orderstream.order.place.v1`): older commands still decode.
            channel: Option<Channel>,
            /// The user the order belongs to, with or without items; when absent, the user of the
            /// details, if any. Optional for the same reason as `channel`.
            user_id: Option<Uuid>,
            /// The items the catalog sells, one line per SKU, whose stock the order reserves. Absent
            /// (or empty) when no item is in the catalog.
            catalog_items: Option<Vec<StockLine>>,
        }

        CONFIRM_ORDER_V1 = "orderstream.order.confirm.v1" =>
        /// Confirm a pending order.
        pub struct ConfirmOrder {
            order_id: Uuid,
            /// The order version the client acts on (`If-Match`); `None` skips the check.
            expected_version: Option<u64>,
            at: DateTime<Utc>,
        }

        START_PROCESSING_V1 = "orderstream.order.start-processing.v1" =>
        /// Start processing a confirmed order.
        pub struct StartProcessing { order_id: Uuid, expected_version: Option<u64>, at: DateTime<Utc> }

        SHIP_ORDER_V1 = "orderstream.order.ship.v1" =>
        /// Hand an order in processing to a carrier.
        pub struct ShipOrder {
            order_id: Uuid,
            carrier: Carrier,
            tracking_number: TrackingNumber,
            expected_version: Option<u64>,
            at: DateTime<Utc>,
        }

        DELIVER_ORDER_V1 = "orderstream.order.deliver.v1" =>
        /// Record that a shipped order arrived.
        pub struct DeliverOrder { order_id: Uuid, expected_version: Option<u64>, at: DateTime<Utc> }

        CANCEL_ORDER_V1 = "orderstream.order.cancel.v1" =>
        /// Cancel an order that has not started processing.
        pub struct CancelOrder {
            order_id: Uuid,
            reason: CancelReason,
            expected_version: Option<u64>,
            at: DateTime<Utc>,
            /// The user cancelling their own order: only the order's owner may then cancel it. Absent
            /// when staff cancel, who may cancel any order. Optional, so older commands still decode.
            acting_user: Option<Uuid>,
        }

        RECORD_PAYMENT_V1 = "orderstream.order.record-payment.v1" =>
        /// Record that purchase `purchase_id` paid `amount` for the order.
        pub struct RecordPayment {
            order_id: Uuid,
            purchase_id: Uuid,
            amount: Money,
            expected_version: Option<u64>,
            paid_at: DateTime<Utc>,
            /// The buyer of the purchase: only a purchase of the order's owner may pay it. Absent when
            /// the purchase's events did not name their buyer. Optional, so older commands still decode.
            payer: Option<Uuid>,
        }

        RECORD_PAYMENT_FAILURE_V1 = "orderstream.order.record-payment-failure.v1" =>
        /// Record that purchase `purchase_id` failed to pay for the order.
        pub struct RecordPaymentFailure {
            order_id: Uuid,
            purchase_id: Uuid,
            reason: PaymentFailureReason,
            expected_version: Option<u64>,
            failed_at: DateTime<Utc>,
            /// The buyer of the purchase: only a purchase of the order's owner may mark its payment
            /// failed. Absent when the purchase's events did not name their buyer. Optional, so older
            /// commands still decode.
            payer: Option<Uuid>,
        }

        RECORD_REFUND_V1 = "orderstream.order.record-refund.v1" =>
        /// Record that the purchase that paid for the order was refunded.
        pub struct RecordRefund {
            order_id: Uuid,
            purchase_id: Uuid,
            expected_version: Option<u64>,
            refunded_at: DateTime<Utc>,
        }

        RECORD_STOCK_RESERVED_V1 = "orderstream.order.record-stock-reserved.v1" =>
        /// Record that the stock of catalog item `sku` is held for the order.
        pub struct RecordStockReserved { order_id: Uuid, sku: Sku, at: DateTime<Utc> }

        RECORD_STOCK_SHORTAGE_V1 = "orderstream.order.record-stock-shortage.v1" =>
        /// Record that catalog item `sku` could not be reserved for the order: not enough in stock.
        pub struct RecordStockShortage { order_id: Uuid, sku: Sku, at: DateTime<Utc> }
    }
    superseded {}
}

impl Command {
    /// The status the command moves the order to, for those that move it along its lifecycle.
    pub(super) fn next_status(&self) -> Option<OrderStatus> {
        match self {
            Self::ConfirmOrder(_) => Some(OrderStatus::Confirmed),
            Self::StartProcessing(_) => Some(OrderStatus::Processing),
            Self::ShipOrder(_) => Some(OrderStatus::Shipped),
            Self::DeliverOrder(_) => Some(OrderStatus::Delivered),
            Self::CancelOrder(_) => Some(OrderStatus::Cancelled),
            Self::PlaceOrder(_)
            | Self::RecordPayment(_)
            | Self::RecordPaymentFailure(_)
            | Self::RecordRefund(_)
            | Self::RecordStockReserved(_)
            | Self::RecordStockShortage(_) => None,
        }
    }

    /// The version the client acted on (`If-Match`), if it said; never for [`PlaceOrder`].
    pub fn expected_version(&self) -> Option<u64> {
        match self {
            Self::PlaceOrder(_) | Self::RecordStockReserved(_) | Self::RecordStockShortage(_) => None,
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
