//! What happened to a purchase, and the events' type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::upcast::{self, PurchaseAuthorizedV1, PurchaseDeclinedV1};
use super::{PaymentMethod, RefundReason, Username};
use crate::card::MaskedCard;
use crate::message::{messages, payloads};
use crate::money::Money;

payloads! {
    /// A card payment was requested; the payment reactor charges it.
    pub struct PurchaseRequested {
        pub purchase_id: Uuid,
        pub user_id: Uuid,
        pub username: Username,
        pub amount: Money,
        pub payment_method: PaymentMethod,
        pub card: MaskedCard,
        pub payment_token: String,
        pub order_id: Option<Uuid>,
        pub transaction_date: DateTime<Utc>,
        pub requested_at: DateTime<Utc>,
    }

    pub struct PurchaseAuthorized {
        pub purchase_id: Uuid,
        pub authorization_id: String,
        pub authorized_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        pub order_id: Option<Uuid>,
        /// The authorized amount.
        pub amount: Option<Money>,
        /// The buyer, copied from the request so the order it pays can check it is the owner's.
        /// Absent only in purchases authorized before events named their buyer.
        pub user_id: Option<Uuid>,
    }

    pub struct PurchaseDeclined {
        pub purchase_id: Uuid,
        pub reason: String,
        pub declined_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        pub order_id: Option<Uuid>,
        /// The buyer, copied from the request so the order it would have paid can check it is the
        /// owner's. Absent only in purchases declined before events named their buyer.
        pub user_id: Option<Uuid>,
    }
    pub struct PurchaseRefunded {
        pub purchase_id: Uuid,
        pub refund_id: Uuid,
        pub amount: Money,
        pub reason: RefundReason,
        pub refunded_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        pub order_id: Option<Uuid>,
    }
}

messages! {
    pub enum Event by purchase_id {
        PURCHASE_REQUESTED_V1 = "orderstream.purchase.requested.v1" => PurchaseRequested,
        /// Type name of [`PurchaseAuthorized`], the version that names the buyer.
        PURCHASE_AUTHORIZED_V2 = "orderstream.purchase.authorized.v2" => PurchaseAuthorized,
        /// Type name of [`PurchaseDeclined`], the version that names the buyer.
        PURCHASE_DECLINED_V2 = "orderstream.purchase.declined.v2" => PurchaseDeclined,
        PURCHASE_REFUNDED_V1 = "orderstream.purchase.refunded.v1" => PurchaseRefunded,
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
            Self::PurchaseRefunded(e) => e.refunded_at,
        }
    }
}
