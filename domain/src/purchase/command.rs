//! What the edge and the payment reactor ask of a purchase, and the commands' type names on the
//! log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PaymentMethod, RefundReason, Username};
use crate::card::MaskedCard;
use crate::message::messages;
use crate::money::{Decimal, Money};

/// Request a card payment. The edge has already replaced the card by its masked form and a
/// gateway token; the full number and the CVC never get this far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestPurchase {
    pub purchase_id: Uuid,
    pub user_id: Uuid,
    pub username: Username,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    pub card: MaskedCard,
    pub payment_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub transaction_date: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

/// Record that the gateway authorized the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordAuthorization {
    pub purchase_id: Uuid,
    pub authorization_id: String,
    pub authorized_at: DateTime<Utc>,
}

/// Record that the gateway declined the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordDecline {
    pub purchase_id: Uuid,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
}

/// Refund part or all of an authorized purchase. The amount is the client's decimal, read in the
/// purchase's currency when decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RefundPurchase {
    pub purchase_id: Uuid,
    pub refund_id: Uuid,
    pub amount: Decimal,
    pub reason: RefundReason,
    pub requested_at: DateTime<Utc>,
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
