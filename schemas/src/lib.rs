//! The JSON Schemas of every command and event version orderstream has written, generated from
//! the `domain` types and checked in under `json/`, plus fixture messages of every version
//! under `fixtures/<type>/`.
//!
//! The tests fail when a checked-in schema differs from what the code generates (run them with
//! `UPDATE_SCHEMAS=1` to rewrite the files after a deliberate change) and when a fixture no
//! longer decodes, so a change that would strand old events on the log cannot pass unnoticed.
//!
//! A superseded version (see [`SUPERSEDED`]) keeps its schema, generated from its frozen struct
//! in `domain::order::upcast` or `domain::purchase::upcast`; `UPDATE_SCHEMAS=1` never rewrites it, so it must stay
//! byte-identical to the file checked in when that version was current.

use domain::order::upcast::{OrderPlacedV1, OrderPlacedV2};
use domain::order::{
    self as o, OrderPlaced, PlaceOrder, ORDER_PLACED_V1, ORDER_PLACED_V2, ORDER_PLACED_V3, PLACE_ORDER_V1,
};
use domain::purchase::upcast::{PurchaseAuthorizedV1, PurchaseDeclinedV1};
use domain::purchase::{self as p, PurchaseAuthorized, PurchaseDeclined, PurchaseRefunded, PurchaseRequested};
use domain::purchase::{RecordAuthorization, RecordDecline, RefundPurchase, RequestPurchase};
use schemars::{schema_for, Schema};

/// Every message version, by its type name, with the schema the code generates for it.
pub fn generated() -> Vec<(&'static str, Schema)> {
    vec![
        (PLACE_ORDER_V1, titled(schema_for!(PlaceOrder), PLACE_ORDER_V1)),
        (ORDER_PLACED_V1, titled(schema_for!(OrderPlacedV1), ORDER_PLACED_V1)),
        (ORDER_PLACED_V2, titled(schema_for!(OrderPlacedV2), ORDER_PLACED_V2)),
        (ORDER_PLACED_V3, titled(schema_for!(OrderPlaced), ORDER_PLACED_V3)),
        (
            o::CONFIRM_ORDER_V1,
            titled(schema_for!(o::ConfirmOrder), o::CONFIRM_ORDER_V1),
        ),
        (
            o::START_PROCESSING_V1,
            titled(schema_for!(o::StartProcessing), o::START_PROCESSING_V1),
        ),
        (o::SHIP_ORDER_V1, titled(schema_for!(o::ShipOrder), o::SHIP_ORDER_V1)),
        (
            o::DELIVER_ORDER_V1,
            titled(schema_for!(o::DeliverOrder), o::DELIVER_ORDER_V1),
        ),
        (
            o::CANCEL_ORDER_V1,
            titled(schema_for!(o::CancelOrder), o::CANCEL_ORDER_V1),
        ),
        (
            o::RECORD_PAYMENT_V1,
            titled(schema_for!(o::RecordPayment), o::RECORD_PAYMENT_V1),
        ),
        (
            o::RECORD_PAYMENT_FAILURE_V1,
            titled(schema_for!(o::RecordPaymentFailure), o::RECORD_PAYMENT_FAILURE_V1),
        ),
        (
            o::RECORD_REFUND_V1,
            titled(schema_for!(o::RecordRefund), o::RECORD_REFUND_V1),
        ),
        (
            o::ORDER_CONFIRMED_V1,
            titled(schema_for!(o::OrderConfirmed), o::ORDER_CONFIRMED_V1),
        ),
        (
            o::ORDER_PROCESSING_STARTED_V1,
            titled(schema_for!(o::OrderProcessingStarted), o::ORDER_PROCESSING_STARTED_V1),
        ),
        (
            o::ORDER_SHIPPED_V1,
            titled(schema_for!(o::OrderShipped), o::ORDER_SHIPPED_V1),
        ),
        (
            o::ORDER_DELIVERED_V1,
            titled(schema_for!(o::OrderDelivered), o::ORDER_DELIVERED_V1),
        ),
        (
            o::ORDER_CANCELLED_V1,
            titled(schema_for!(o::OrderCancelled), o::ORDER_CANCELLED_V1),
        ),
        (o::ORDER_PAID_V1, titled(schema_for!(o::OrderPaid), o::ORDER_PAID_V1)),
        (
            o::ORDER_PAYMENT_FAILED_V1,
            titled(schema_for!(o::OrderPaymentFailed), o::ORDER_PAYMENT_FAILED_V1),
        ),
        (
            o::ORDER_REFUNDED_V1,
            titled(schema_for!(o::OrderRefunded), o::ORDER_REFUNDED_V1),
        ),
        (
            p::REQUEST_PURCHASE_V1,
            titled(schema_for!(RequestPurchase), p::REQUEST_PURCHASE_V1),
        ),
        (
            p::RECORD_AUTHORIZATION_V1,
            titled(schema_for!(RecordAuthorization), p::RECORD_AUTHORIZATION_V1),
        ),
        (
            p::RECORD_DECLINE_V1,
            titled(schema_for!(RecordDecline), p::RECORD_DECLINE_V1),
        ),
        (
            p::REFUND_PURCHASE_V1,
            titled(schema_for!(RefundPurchase), p::REFUND_PURCHASE_V1),
        ),
        (
            p::PURCHASE_REQUESTED_V1,
            titled(schema_for!(PurchaseRequested), p::PURCHASE_REQUESTED_V1),
        ),
        (
            p::PURCHASE_AUTHORIZED_V1,
            titled(schema_for!(PurchaseAuthorizedV1), p::PURCHASE_AUTHORIZED_V1),
        ),
        (
            p::PURCHASE_AUTHORIZED_V2,
            titled(schema_for!(PurchaseAuthorized), p::PURCHASE_AUTHORIZED_V2),
        ),
        (
            p::PURCHASE_DECLINED_V1,
            titled(schema_for!(PurchaseDeclinedV1), p::PURCHASE_DECLINED_V1),
        ),
        (
            p::PURCHASE_DECLINED_V2,
            titled(schema_for!(PurchaseDeclined), p::PURCHASE_DECLINED_V2),
        ),
        (
            p::PURCHASE_REFUNDED_V1,
            titled(schema_for!(PurchaseRefunded), p::PURCHASE_REFUNDED_V1),
        ),
    ]
}

/// Versions no longer written, only decoded and upcast: their schemas are history and are checked
/// but never rewritten.
pub const SUPERSEDED: &[&str] = &[
    ORDER_PLACED_V1,
    ORDER_PLACED_V2,
    p::PURCHASE_AUTHORIZED_V1,
    p::PURCHASE_DECLINED_V1,
];

/// Names the schema after the wire type, the name consumers know it by.
fn titled(mut schema: Schema, message_type: &str) -> Schema {
    schema.insert("$id".to_owned(), format!("{message_type}.schema.json").into());
    schema
}

/// The checked-in file for `message_type`, relative to this crate.
pub fn schema_path(message_type: &str) -> String {
    format!("json/{message_type}.schema.json")
}

/// Pretty JSON with a trailing newline, as checked in.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schema serialises");
    text.push('\n');
    text
}
