//! Older versions of purchase events, and the one place they become the current shape (see
//! `order::upcast`, which evolves the same way).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PurchaseAuthorized, PurchaseDeclined};
use crate::message::payloads;
use crate::money::Money;

payloads! {
    // `orderstream.purchase.authorized.v1`, frozen: the shape of `PurchaseAuthorized` before
    // `user_id`. Its fields' doc comments are its schema's descriptions and must not change.
    #[cfg_attr(feature = "schema", schemars(rename = "PurchaseAuthorized"))]
    pub struct PurchaseAuthorizedV1 {
        purchase_id: Uuid,
        authorization_id: String,
        authorized_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        order_id: Option<Uuid>,
        /// The authorized amount.
        amount: Option<Money>,
    }
}

/// `orderstream.purchase.authorized.v1` → current: the buyer was not recorded, so it is
/// unknown, and an order it pays cannot check it.
pub fn purchase_authorized_v1(v1: PurchaseAuthorizedV1) -> PurchaseAuthorized {
    PurchaseAuthorized {
        purchase_id: v1.purchase_id,
        authorization_id: v1.authorization_id,
        authorized_at: v1.authorized_at,
        order_id: v1.order_id,
        amount: v1.amount,
        user_id: None,
    }
}

payloads! {
    // `orderstream.purchase.declined.v1`, frozen: the shape of `PurchaseDeclined` before
    // `user_id`. Its fields' doc comments are its schema's descriptions and must not change.
    #[cfg_attr(feature = "schema", schemars(rename = "PurchaseDeclined"))]
    pub struct PurchaseDeclinedV1 {
        purchase_id: Uuid,
        reason: String,
        declined_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        order_id: Option<Uuid>,
    }
}

/// `orderstream.purchase.declined.v1` → current: the buyer was not recorded, so it is unknown.
pub fn purchase_declined_v1(v1: PurchaseDeclinedV1) -> PurchaseDeclined {
    PurchaseDeclined {
        purchase_id: v1.purchase_id,
        reason: v1.reason,
        declined_at: v1.declined_at,
        order_id: v1.order_id,
        user_id: None,
    }
}
