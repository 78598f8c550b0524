//! What the edge and the payment reactor ask of a purchase, and the commands' type names on the
//! log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PaymentMethod, RefundReason, Username};
use crate::card::MaskedCard;
use crate::message::messages;
use crate::money::{Decimal, Money};

messages! {
    pub enum Command by purchase_id {
        REQUEST_PURCHASE_V1 = "orderstream.purchase.request.v1" =>
        /// Request a card payment. The edge has already replaced the card by its masked form and a
        /// gateway token; the full number and the CVC never get this far.
        pub struct RequestPurchase {
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

        RECORD_AUTHORIZATION_V1 = "orderstream.purchase.record-authorization.v1" =>
        /// Record that the gateway authorized the charge.
        pub struct RecordAuthorization { purchase_id: Uuid, authorization_id: String, authorized_at: DateTime<Utc> }

        RECORD_DECLINE_V1 = "orderstream.purchase.record-decline.v1" =>
        /// Record that the gateway declined the charge.
        pub struct RecordDecline { purchase_id: Uuid, reason: String, declined_at: DateTime<Utc> }

        REFUND_PURCHASE_V1 = "orderstream.purchase.refund.v1" =>
        /// Refund part or all of an authorized purchase. The amount is the client's decimal, read in the
        /// purchase's currency when decided.
        pub struct RefundPurchase {
            purchase_id: Uuid,
            refund_id: Uuid,
            amount: Decimal,
            reason: RefundReason,
            requested_at: DateTime<Utc>,
        }

        RECORD_REFUND_V1 = "orderstream.purchase.record-refund.v1" =>
        /// Record that the gateway paid refund `refund_id` back, as requested by an accepted
        /// [`RefundPurchase`].
        pub struct RecordRefund { purchase_id: Uuid, refund_id: Uuid, refunded_at: DateTime<Utc> }
    }
    superseded {}
}
