//! What clients and reactors ask of an order, and the commands' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    CancelReason, Carrier, Channel, OrderDetails, OrderName, OrderNote, OrderStatus, PaymentFailureReason,
    TrackingNumber,
};
use crate::message::{messages, payloads};
use crate::money::Money;

payloads! {
    /// Place a new order. The edge stamps `placed_at` and picks `order_id`. Without `details` the
    /// order has no items and no total (the seed's orders), and takes no payment.
    pub struct PlaceOrder {
        pub order_id: Uuid,
        pub name: OrderName,
        pub note: Option<OrderNote>,
        pub placed_at: DateTime<Utc>,
        pub details: Option<OrderDetails>,
        /// Where the order is placed; [`Channel::Api`] when not said. Optional, so the command keeps
        /// its type name (`orderstream.order.place.v1`): older commands still decode.
        pub channel: Option<Channel>,
        /// The user the order belongs to, with or without items; when absent, the user of the
        /// details, if any. Optional for the same reason as `channel`.
        pub user_id: Option<Uuid>,
    }

    /// Confirm a pending order.
    pub struct ConfirmOrder {
        pub order_id: Uuid,
        /// The order version the client acts on (`If-Match`); `None` skips the check.
        pub expected_version: Option<u64>,
        pub at: DateTime<Utc>,
    }

    /// Start processing a confirmed order.
    pub struct StartProcessing {
        pub order_id: Uuid,
        pub expected_version: Option<u64>,
        pub at: DateTime<Utc>,
    }

    /// Hand an order in processing to a carrier.
    pub struct ShipOrder {
        pub order_id: Uuid,
        pub carrier: Carrier,
        pub tracking_number: TrackingNumber,
        pub expected_version: Option<u64>,
        pub at: DateTime<Utc>,
    }

    /// Record that a shipped order arrived.
    pub struct DeliverOrder {
        pub order_id: Uuid,
        pub expected_version: Option<u64>,
        pub at: DateTime<Utc>,
    }

    /// Cancel an order that has not started processing.
    pub struct CancelOrder {
        pub order_id: Uuid,
        pub reason: CancelReason,
        pub expected_version: Option<u64>,
        pub at: DateTime<Utc>,
        /// The user cancelling their own order: only the order's owner may then cancel it. Absent
        /// when staff cancel, who may cancel any order. Optional, so older commands still decode.
        pub acting_user: Option<Uuid>,
    }

    /// Record that purchase `purchase_id` paid `amount` for the order.
    pub struct RecordPayment {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub amount: Money,
        pub expected_version: Option<u64>,
        pub paid_at: DateTime<Utc>,
        /// The buyer of the purchase: only a purchase of the order's owner may pay it. Absent when
        /// the purchase's events did not name their buyer. Optional, so older commands still decode.
        pub payer: Option<Uuid>,
    }

    /// Record that purchase `purchase_id` failed to pay for the order.
    pub struct RecordPaymentFailure {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub reason: PaymentFailureReason,
        pub expected_version: Option<u64>,
        pub failed_at: DateTime<Utc>,
        /// The buyer of the purchase: only a purchase of the order's owner may mark its payment
        /// failed. Absent when the purchase's events did not name their buyer. Optional, so older
        /// commands still decode.
        pub payer: Option<Uuid>,
    }

    /// Record that the purchase that paid for the order was refunded.
    pub struct RecordRefund {
        pub order_id: Uuid,
        pub purchase_id: Uuid,
        pub expected_version: Option<u64>,
        pub refunded_at: DateTime<Utc>,
    }
}

messages! {
    pub enum Command by order_id {
        /// Type name of [`PlaceOrder`] on the commands topic.
        PLACE_ORDER_V1 = "orderstream.order.place.v1" => PlaceOrder,
        /// Type name of [`ConfirmOrder`].
        CONFIRM_ORDER_V1 = "orderstream.order.confirm.v1" => ConfirmOrder,
        /// Type name of [`StartProcessing`].
        START_PROCESSING_V1 = "orderstream.order.start-processing.v1" => StartProcessing,
        /// Type name of [`ShipOrder`].
        SHIP_ORDER_V1 = "orderstream.order.ship.v1" => ShipOrder,
        /// Type name of [`DeliverOrder`].
        DELIVER_ORDER_V1 = "orderstream.order.deliver.v1" => DeliverOrder,
        /// Type name of [`CancelOrder`].
        CANCEL_ORDER_V1 = "orderstream.order.cancel.v1" => CancelOrder,
        /// Type name of [`RecordPayment`].
        RECORD_PAYMENT_V1 = "orderstream.order.record-payment.v1" => RecordPayment,
        /// Type name of [`RecordPaymentFailure`].
        RECORD_PAYMENT_FAILURE_V1 = "orderstream.order.record-payment-failure.v1" => RecordPaymentFailure,
        /// Type name of [`RecordRefund`].
        RECORD_REFUND_V1 = "orderstream.order.record-refund.v1" => RecordRefund,
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
            Self::PlaceOrder(_) | Self::RecordPayment(_) | Self::RecordPaymentFailure(_) | Self::RecordRefund(_) => {
                None
            }
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
