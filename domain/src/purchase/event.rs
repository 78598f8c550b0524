//! What happened to a purchase, and the events' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::upcast::{self, PurchaseAuthorizedV1, PurchaseDeclinedV1};
use super::{PaymentMethod, RefundReason, Username};
use crate::card::MaskedCard;
use crate::message::messages;
use crate::money::Money;

messages! {
    pub enum Event by purchase_id {
        PURCHASE_REQUESTED_V1 = "orderstream.purchase.requested.v1" =>
        /// A card payment was requested; the payment reactor charges it.
        pub struct PurchaseRequested {
            purchase_id: Uuid,
            user_id: Uuid,
            username: Username,
            amount: Money,
            payment_method: PaymentMethod,
            card: MaskedCard,
            payment_token: String,
            order_id: Option<Uuid>,
            transaction_date: DateTime<Utc>,
            requested_at: DateTime<Utc>,
        }

        /// The version that names the buyer.
        PURCHASE_AUTHORIZED_V2 = "orderstream.purchase.authorized.v2" =>
        pub struct PurchaseAuthorized {
            purchase_id: Uuid,
            authorization_id: String,
            authorized_at: DateTime<Utc>,
            /// The order this purchase pays, copied from the request so order reactors need nothing else.
            order_id: Option<Uuid>,
            /// The authorized amount.
            amount: Option<Money>,
            /// The buyer, copied from the request so the order it pays can check it is the owner's.
            /// Absent only in purchases authorized before events named their buyer.
            user_id: Option<Uuid>,
        }

        /// The version that names the buyer.
        PURCHASE_DECLINED_V2 = "orderstream.purchase.declined.v2" =>
        pub struct PurchaseDeclined {
            purchase_id: Uuid,
            reason: String,
            declined_at: DateTime<Utc>,
            /// The order this purchase pays, copied from the request so order reactors need nothing else.
            order_id: Option<Uuid>,
            /// The buyer, copied from the request so the order it would have paid can check it is the
            /// owner's. Absent only in purchases declined before events named their buyer.
            user_id: Option<Uuid>,
        }

        PURCHASE_REFUND_REQUESTED_V1 = "orderstream.purchase.refund-requested.v1" =>
        /// A refund was accepted and its amount set aside from what is refundable; the payment reactor
        /// asks the gateway for it, then records it, as `orderstream.purchase.refunded.v1`.
        pub struct PurchaseRefundRequested {
            purchase_id: Uuid,
            refund_id: Uuid,
            amount: Money,
            reason: RefundReason,
            requested_at: DateTime<Utc>,
            /// The order this purchase pays, copied from the request so order reactors need nothing else.
            order_id: Option<Uuid>,
        }

        /// The gateway paid the refund back (or, before refunds went through the gateway, the refund
        /// was accepted).
        PURCHASE_REFUNDED_V1 = "orderstream.purchase.refunded.v1" =>
        pub struct PurchaseRefunded {
            purchase_id: Uuid,
            refund_id: Uuid,
            amount: Money,
            reason: RefundReason,
            refunded_at: DateTime<Utc>,
            /// The order this purchase pays, copied from the request so order reactors need nothing else.
            order_id: Option<Uuid>,
        }
    }
    superseded {
        /// Type name of the first version of [`PurchaseAuthorized`], written before it named the
        /// buyer. Decoded only: [`upcast::purchase_authorized_v1`] turns it into the current shape.
        PURCHASE_AUTHORIZED_V1 = "orderstream.purchase.authorized.v1"
            => PurchaseAuthorized(PurchaseAuthorizedV1, upcast::purchase_authorized_v1),
        /// Type name of the first version of [`PurchaseDeclined`], written before it named the
        /// buyer. Decoded only: [`upcast::purchase_declined_v1`] turns it into the current shape.
        PURCHASE_DECLINED_V1 = "orderstream.purchase.declined.v1"
            => PurchaseDeclined(PurchaseDeclinedV1, upcast::purchase_declined_v1),
    }
}

impl Event {
    /// When the fact happened: the edge's or the reactor's clock at the time.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::PurchaseRequested(e) => e.requested_at,
            Self::PurchaseAuthorized(e) => e.authorized_at,
            Self::PurchaseDeclined(e) => e.declined_at,
            Self::PurchaseRefundRequested(e) => e.requested_at,
            Self::PurchaseRefunded(e) => e.refunded_at,
        }
    }
}
