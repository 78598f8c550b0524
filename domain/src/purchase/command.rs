//! What the edge and the payment reactor ask of a purchase, and the commands' type names on the
//! log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PaymentMethod, RefundReason, Username};
use crate::card::MaskedCard;
use crate::message::{messages, payloads};
use crate::money::{Decimal, Money};

payloads! {
    /// Request a card payment. The edge has already replaced the card by its masked form and a
    /// gateway token; the full number and the CVC never get this far.
    pub struct RequestPurchase {
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

    /// Record that the gateway authorized the charge.
    pub struct RecordAuthorization {
        pub purchase_id: Uuid,
        pub authorization_id: String,
        pub authorized_at: DateTime<Utc>,
    }

    /// Record that the gateway declined the charge.
    pub struct RecordDecline {
        pub purchase_id: Uuid,
        pub reason: String,
        pub declined_at: DateTime<Utc>,
    }

    /// Refund part or all of an authorized purchase. The amount is the client's decimal, read in the
    /// purchase's currency when decided.
    pub struct RefundPurchase {
        pub purchase_id: Uuid,
        pub refund_id: Uuid,
        pub amount: Decimal,
        pub reason: RefundReason,
        pub requested_at: DateTime<Utc>,
    }
}

messages! {
    pub enum Command by purchase_id {
        REQUEST_PURCHASE_V1 = "orderstream.purchase.request.v1" => RequestPurchase,
        RECORD_AUTHORIZATION_V1 = "orderstream.purchase.record-authorization.v1" => RecordAuthorization,
        RECORD_DECLINE_V1 = "orderstream.purchase.record-decline.v1" => RecordDecline,
        REFUND_PURCHASE_V1 = "orderstream.purchase.refund.v1" => RefundPurchase,
    }
    superseded {}
}
