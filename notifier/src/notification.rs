//! What a webhook is told: the names of the events it can subscribe to, and for each event the
//! public view sent as `data`. The view is curated field by field (ids, statuses, amounts,
//! times), never the raw event: a purchase's events carry a masked card and a payment token
//! that no third-party endpoint should receive, and new fields in events must not leak by
//! default.

use chrono::{DateTime, Utc};
use domain::money::Money;
use domain::{order, purchase, Event, Message as _};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every event name a webhook can subscribe to, as written in `events` and sent as `type`.
pub const EVENT_TYPES: [&str; 15] = [
    "order.placed",
    "order.confirmed",
    "order.processing-started",
    "order.stock-reserved",
    "order.paid",
    "order.payment-failed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "order.refunded",
    "purchase.requested",
    "purchase.authorized",
    "purchase.declined",
    "purchase.refund-requested",
    "purchase.refunded",
];

/// One event as webhooks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// One of [`EVENT_TYPES`].
    pub event_type: &'static str,
    /// The order or purchase it is about.
    pub aggregate_id: Uuid,
    /// Whose it is, when the event says; otherwise the owner recorded when the order or
    /// purchase was created.
    pub owner: Option<Uuid>,
    /// Set on the event that creates an order or purchase: its owner, recorded for the later
    /// events that do not name it.
    pub creates_owner: bool,
    pub occurred_at: DateTime<Utc>,
    /// The public view sent as `data`.
    pub data: Value,
}

impl Notification {
    /// The notification of `event`, or `None` for events no webhook is told of (the catalog's,
    /// and the reservation of each single item, a step towards `order.stock-reserved`).
    pub fn of(event: &Event) -> Option<Self> {
        let (event_type, owner, creates_owner, data) = match event {
            Event::Order(event) => {
                let (event_type, data) = order_view(event)?;
                // Only a placed order names its owner; its later events are found by the order.
                let placed = match event {
                    order::Event::OrderPlaced(placed) => Some(placed),
                    _ => None,
                };
                (event_type, placed.and_then(|p| p.user_id), placed.is_some(), data)
            }
            Event::Purchase(event) => {
                let (event_type, owner, data) = purchase_view(event);
                let creates = matches!(event, purchase::Event::PurchaseRequested(_));
                (event_type, owner, creates, data)
            }
            Event::Product(_) => return None,
        };
        Some(Self {
            event_type,
            aggregate_id: event.aggregate_id(),
            owner,
            creates_owner,
            occurred_at: event.occurred_at(),
            data,
        })
    }
}

type View = (&'static str, Option<Uuid>, Value);

fn order_view(event: &order::Event) -> Option<(&'static str, Value)> {
    use order::Event as E;
    Some(match event {
        E::OrderPlaced(e) => (
            "order.placed",
            json!({
                "order_id": e.order_id,
                "status": "placed",
                "channel": e.channel.as_str(),
                "total": e.details.as_ref().map(|d| money(&d.totals.total)),
                "items": e.details.as_ref().map(|d| d.items.len()),
                "placed_at": e.placed_at,
            }),
        ),
        E::OrderConfirmed(e) => (
            "order.confirmed",
            json!({ "order_id": e.order_id, "status": "confirmed", "confirmed_at": e.confirmed_at }),
        ),
        E::OrderProcessingStarted(e) => (
            "order.processing-started",
            json!({ "order_id": e.order_id, "status": "processing", "started_at": e.started_at }),
        ),
        E::OrderStockReserved(e) => (
            "order.stock-reserved",
            json!({ "order_id": e.order_id, "stock_status": "reserved", "reserved_at": e.reserved_at }),
        ),
        E::OrderPaid(e) => (
            "order.paid",
            json!({
                "order_id": e.order_id,
                "purchase_id": e.purchase_id,
                "payment_status": "paid",
                "amount": money(&e.amount),
                "paid_at": e.paid_at,
            }),
        ),
        E::OrderPaymentFailed(e) => (
            "order.payment-failed",
            json!({
                "order_id": e.order_id,
                "purchase_id": e.purchase_id,
                "payment_status": "failed",
                "reason": e.reason.as_str(),
                "failed_at": e.failed_at,
            }),
        ),
        E::OrderShipped(e) => (
            "order.shipped",
            json!({
                "order_id": e.order_id,
                "status": "shipped",
                "carrier": e.carrier.as_str(),
                "tracking_number": e.tracking_number.as_str(),
                "shipped_at": e.shipped_at,
            }),
        ),
        E::OrderDelivered(e) => (
            "order.delivered",
            json!({ "order_id": e.order_id, "status": "delivered", "delivered_at": e.delivered_at }),
        ),
        E::OrderCancelled(e) => (
            "order.cancelled",
            json!({
                "order_id": e.order_id,
                "status": "cancelled",
                "reason": e.reason.as_str(),
                "refund_amount": e.refund_amount.as_ref().map(money),
                "cancelled_at": e.cancelled_at,
            }),
        ),
        E::OrderRefunded(e) => (
            "order.refunded",
            json!({
                "order_id": e.order_id,
                "purchase_id": e.purchase_id,
                "payment_status": "refunded",
                "refunded_at": e.refunded_at,
            }),
        ),
        E::OrderItemReserved(_) => return None,
    })
}

fn purchase_view(event: &purchase::Event) -> View {
    use purchase::Event as E;
    match event {
        // Not the card (even masked), the payment token or the username: ids, amount and time.
        E::PurchaseRequested(e) => (
            "purchase.requested",
            Some(e.user_id),
            json!({
                "purchase_id": e.purchase_id,
                "order_id": e.order_id,
                "status": "requested",
                "amount": money(&e.amount),
                "requested_at": e.requested_at,
            }),
        ),
        E::PurchaseAuthorized(e) => (
            "purchase.authorized",
            e.user_id,
            json!({
                "purchase_id": e.purchase_id,
                "order_id": e.order_id,
                "status": "authorized",
                "amount": e.amount.as_ref().map(money),
                "authorized_at": e.authorized_at,
            }),
        ),
        E::PurchaseDeclined(e) => (
            "purchase.declined",
            e.user_id,
            json!({
                "purchase_id": e.purchase_id,
                "order_id": e.order_id,
                "status": "declined",
                "reason": e.reason,
                "declined_at": e.declined_at,
            }),
        ),
        E::PurchaseRefundRequested(e) => (
            "purchase.refund-requested",
            None,
            json!({
                "purchase_id": e.purchase_id,
                "order_id": e.order_id,
                "refund_id": e.refund_id,
                "amount": money(&e.amount),
                "requested_at": e.requested_at,
            }),
        ),
        E::PurchaseRefunded(e) => (
            "purchase.refunded",
            None,
            json!({
                "purchase_id": e.purchase_id,
                "order_id": e.order_id,
                "refund_id": e.refund_id,
                "status": "refunded",
                "amount": money(&e.amount),
                "refunded_at": e.refunded_at,
            }),
        ),
    }
}

/// An amount as the APIs write it: a decimal string and the currency code.
fn money(amount: &Money) -> Value {
    json!({ "amount": amount.to_decimal_string(), "currency": amount.currency().code() })
}

#[cfg(test)]
mod tests {
    use service_kit::testing::order_placed;

    use super::*;

    #[test]
    fn an_order_placed_names_its_owner_and_records_it() {
        let owner = Uuid::from_u128(7);
        let placed = order::OrderPlaced {
            user_id: Some(owner),
            ..order_placed("Jane Roe", "2026-01-02T03:04:05Z".parse().unwrap())
        };
        let told = Notification::of(&Event::Order(order::Event::OrderPlaced(placed.clone()))).expect("told");
        assert_eq!(told.event_type, "order.placed");
        assert_eq!(
            (told.aggregate_id, told.owner, told.creates_owner),
            (placed.order_id, Some(owner), true)
        );
        assert_eq!(told.data["order_id"], json!(placed.order_id));
        assert_eq!(told.data["placed_at"], json!("2026-01-02T03:04:05Z"));
        assert!(told.data.get("name").is_none(), "the customer's name is not sent");
    }

    #[test]
    fn later_order_events_leave_the_owner_to_the_recorded_one() {
        let delivered = order::OrderDelivered {
            order_id: Uuid::from_u128(9),
            delivered_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        };
        let told = Notification::of(&Event::Order(order::Event::OrderDelivered(delivered))).expect("told");
        assert_eq!(
            (told.event_type, told.owner, told.creates_owner),
            ("order.delivered", None, false)
        );
        assert!(EVENT_TYPES.contains(&told.event_type));
    }
}
