//! The fold of `order_status`, on the example order events: no Kafka, no PostgreSQL.

use std::collections::HashMap;

use super::*;
use crate::projection::{fold, logged, to_load};
use chrono::{DateTime, Utc};
use domain::money::{Currency, Money};
use domain::order::{Channel, OrderName, OrderNote, OrderPlaced, PricedOrderDetails};
use domain::pricing::{self, ItemName, LineItem, Quantity, Sku};
use domain::product::{StockLine, StockQuantity};
use domain::purchase;
use domain::testing::OrderEvents;
use domain::{Event, Message};
use OrderStatus::{Cancelled, Confirmed, Delivered, Processing, Shipped};
use PaymentStatus::{Paid, Refunded};

const ORDER: Uuid = Uuid::from_u128(0x0001);
const USER: Uuid = Uuid::from_u128(0x1111);
const PURCHASE: Uuid = Uuid::from_u128(0x2222);

/// The time of the `n`th step after placing.
fn t(n: i64) -> DateTime<Utc> {
    "2025-01-19T15:04:05Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(n)
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
}

fn of_order(sequence: u64, event: order::Event) -> LoggedEvent {
    logged(sequence, Event::Order(event))
}

/// Two of SKU-1 at 12.34 and one of SKU-2 at 5.00: 29.68 + 2.37 tax + 9.99 shipping = 42.04.
fn placed_priced(order_id: Uuid) -> LoggedEvent {
    let items: Vec<LineItem> = [("SKU-1", 2, 1_234), ("SKU-2", 1, 500)]
        .into_iter()
        .map(|(sku, quantity, unit_minor)| LineItem {
            sku: Sku::parse(sku).unwrap(),
            name: ItemName::parse(&format!("Item {sku}")).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: usd(unit_minor),
        })
        .collect();
    let currency = Currency::parse("currency", "USD").unwrap();
    let totals = pricing::price(&items, currency).unwrap();
    of_order(
        1,
        order::Event::OrderPlaced(OrderPlaced {
            order_id,
            name: OrderName::parse("Jane Doe").unwrap(),
            note: Some(OrderNote::parse("Leave at the door").unwrap()),
            placed_at: t(0),
            details: Some(PricedOrderDetails {
                user_id: Some(USER),
                currency,
                items,
                totals,
            }),
            channel: Channel::Web,
            user_id: Some(USER),
            catalog_items: None,
        }),
    )
}

fn placed_unpriced(order_id: Uuid) -> LoggedEvent {
    of_order(
        1,
        order::Event::OrderPlaced(OrderPlaced {
            order_id,
            name: OrderName::parse("John Doe").unwrap(),
            note: None,
            placed_at: t(0),
            details: None,
            channel: Channel::Api,
            user_id: None,
            catalog_items: None,
        }),
    )
}

/// The example events of `ORDER`, whose payment comes from `PURCHASE`.
const EVENTS: OrderEvents = OrderEvents {
    order_id: ORDER,
    purchase_id: PURCHASE,
};

/// The event moving `ORDER` to `status` at the `n`th step.
fn moved(seq: u64, status: OrderStatus, n: i64) -> LoggedEvent {
    of_order(seq, EVENTS.moved(status, t(n)))
}

/// The payment of `ORDER` by `PURCHASE` reaching `status` at the `n`th step.
fn settled(seq: u64, status: PaymentStatus, n: i64) -> LoggedEvent {
    of_order(seq, EVENTS.settled(status, t(n)))
}

/// Another purchase failing to pay for `ORDER` at the `n`th step.
fn payment_failed(seq: u64, n: i64) -> LoggedEvent {
    let declined = OrderEvents {
        purchase_id: Uuid::from_u128(0x3333),
        ..EVENTS
    };
    of_order(seq, declined.settled(PaymentStatus::Failed, t(n)))
}

fn purchase_declined() -> LoggedEvent {
    logged(
        2,
        Event::Purchase(purchase::Event::PurchaseDeclined(purchase::PurchaseDeclined {
            purchase_id: PURCHASE,
            reason: "card_declined".to_owned(),
            declined_at: t(2),
            order_id: None,
            user_id: None,
        })),
    )
}

fn fold_orders(loaded: HashMap<Uuid, OrderStatusRow>, events: &[LoggedEvent]) -> HashMap<Uuid, OrderStatusRow> {
    fold(&mut Orders, loaded, events)
}

/// The stored row of `ORDER` after `events`, as a later batch would load it.
fn stored_after(events: &[LoggedEvent]) -> HashMap<Uuid, OrderStatusRow> {
    fold_orders(HashMap::new(), events)
}

#[test]
fn a_whole_lifecycle_in_one_batch_is_one_row_with_every_timestamp() {
    let other = Uuid::from_u128(0x0002);
    let events = [
        placed_priced(ORDER),
        placed_unpriced(other),
        moved(2, Confirmed, 1),
        purchase_declined(),
        payment_failed(3, 2),
        settled(4, Paid, 3),
        moved(5, Processing, 4),
        moved(6, Shipped, 5),
        moved(7, Delivered, 6),
        settled(8, Refunded, 7),
    ];
    assert!(to_load::<Orders>(&events).is_empty());
    let rows = fold_orders(HashMap::new(), &events);
    assert_eq!(rows.len(), 2);
    // What placing wrote, every column the later events leave alone.
    let placed = &stored_after(&[placed_priced(ORDER)])[&ORDER];
    assert_eq!(
        (
            placed.order_id,
            placed.name.as_str(),
            placed.note.as_deref(),
            placed.channel.as_str(),
            placed.user_id,
            placed.currency.as_deref(),
            placed.item_count,
            placed.placed_at,
        ),
        (
            ORDER,
            "Jane Doe",
            Some("Leave at the door"),
            "web",
            Some(USER),
            Some("USD"),
            3,
            t(0)
        )
    );
    assert_eq!(
        (
            placed.subtotal_minor,
            placed.tax_minor,
            placed.shipping_minor,
            placed.total_minor
        ),
        (Some(2_968), Some(237), Some(999), Some(4_204))
    );
    assert_eq!(
        rows[&ORDER],
        OrderStatusRow {
            status: "delivered".to_owned(),
            payment_status: "refunded".to_owned(),
            carrier: Some("UPS".to_owned()),
            tracking_number: Some("1Z999AA10123456784".to_owned()),
            cancel_reason: None,
            payment_failure_reason: Some("card_declined".to_owned()),
            paid_with: Some(PURCHASE),
            confirmed_at: Some(t(1)),
            payment_failed_at: Some(t(2)),
            paid_at: Some(t(3)),
            processing_started_at: Some(t(4)),
            shipped_at: Some(t(5)),
            delivered_at: Some(t(6)),
            refunded_at: Some(t(7)),
            cancelled_at: None,
            updated_at: t(7),
            version: 8,
            ..placed.clone()
        }
    );

    // The order placed without items has no money and nothing to count.
    let plain = &rows[&other];
    assert_eq!(
        (plain.status.as_str(), plain.payment_status.as_str()),
        ("pending", "pending")
    );
    assert_eq!(
        (plain.user_id, plain.currency.as_deref(), plain.item_count),
        (None, None, 0)
    );
    assert_eq!(
        (
            plain.subtotal_minor,
            plain.tax_minor,
            plain.shipping_minor,
            plain.total_minor
        ),
        (None, None, None, None)
    );
    assert_eq!(plain.channel, Channel::Api.as_str());
    assert_eq!((plain.updated_at, plain.version), (t(0), 1));
    let never = [
        plain.confirmed_at,
        plain.processing_started_at,
        plain.shipped_at,
        plain.delivered_at,
        plain.cancelled_at,
        plain.paid_at,
        plain.payment_failed_at,
        plain.refunded_at,
    ];
    assert_eq!(never, [None; 8]);
}

#[test]
fn a_batch_continues_the_stored_row_and_passes_over_what_it_already_holds() {
    let stored = stored_after(&[placed_priced(ORDER), moved(2, Confirmed, 1)]);
    let events = [moved(2, Confirmed, 1), moved(3, Processing, 4), moved(4, Shipped, 5)];
    assert_eq!(to_load::<Orders>(&events), vec![ORDER]);

    let rows = fold_orders(stored.clone(), &events);
    let row = &rows[&ORDER];
    assert_eq!((row.status.as_str(), row.version, row.updated_at), ("shipped", 4, t(5)));
    // What the stored row knew stays; what the batch adds is added.
    assert_eq!(row.confirmed_at, Some(t(1)));
    assert_eq!(row.processing_started_at, Some(t(4)));
    assert_eq!(row.shipped_at, Some(t(5)));
    assert_eq!(row.carrier.as_deref(), Some("UPS"));
    assert_eq!((row.item_count, row.total_minor), (3, Some(4_204)));
    assert_eq!(row.placed_at, t(0));

    // Replaying what the stored row already reflects changes nothing.
    let again = fold_orders(rows.clone(), &events);
    assert_eq!(again, rows);
}

#[test]
fn a_paid_then_refunded_order_keeps_the_purchase_that_paid() {
    let stored = stored_after(&[placed_priced(ORDER), payment_failed(2, 1)]);
    let failed = &stored[&ORDER];
    assert_eq!(failed.payment_status, PaymentStatus::Failed.as_str());
    assert_eq!(failed.payment_failure_reason.as_deref(), Some("card_declined"));

    let paid_rows = fold_orders(stored, &[settled(3, Paid, 2)]);
    let row = &paid_rows[&ORDER];
    assert_eq!(
        (row.payment_status.as_str(), row.paid_with),
        (PaymentStatus::Paid.as_str(), Some(PURCHASE))
    );
    assert_eq!(row.paid_at, Some(t(2)));
    // The failure before it stays on record.
    assert_eq!(row.payment_failed_at, Some(t(1)));
    assert_eq!(row.status, OrderStatus::Pending.as_str());

    let refunded_rows = fold_orders(paid_rows, &[settled(4, Refunded, 9)]);
    let row = &refunded_rows[&ORDER];
    assert_eq!(row.payment_status, PaymentStatus::Refunded.as_str());
    assert_eq!(row.paid_with, Some(PURCHASE));
    assert_eq!((row.paid_at, row.refunded_at), (Some(t(2)), Some(t(9))));
    assert_eq!((row.updated_at, row.version), (t(9), 4));

    // A refunded payment is final: a late payment cannot have been decided and changes nothing
    // but the version.
    let late = fold_orders(refunded_rows.clone(), &[settled(5, Paid, 10)]);
    assert_eq!(late[&ORDER].payment_status, PaymentStatus::Refunded.as_str());
    assert_eq!(late[&ORDER].paid_at, Some(t(2)));
    assert_eq!(late[&ORDER].version, 5);
}

#[test]
fn a_cancelled_order_records_why_and_when_and_moves_no_further() {
    let events = [
        placed_priced(ORDER),
        moved(2, Confirmed, 1),
        settled(3, Paid, 2),
        of_order(4, EVENTS.cancelled_refunding(t(3))),
    ];
    let rows = fold_orders(HashMap::new(), &events);
    let row = &rows[&ORDER];
    assert_eq!(row.status, OrderStatus::Cancelled.as_str());
    assert_eq!(row.cancel_reason.as_deref(), Some("changed my mind"));
    assert_eq!(row.cancelled_at, Some(t(3)));
    // Cancelling asks for a refund; the payment is refunded only when that is recorded.
    assert_eq!(row.payment_status, PaymentStatus::Paid.as_str());

    let later = fold_orders(rows, &[moved(5, Shipped, 4), settled(6, Refunded, 5)]);
    let row = &later[&ORDER];
    assert_eq!(row.status, OrderStatus::Cancelled.as_str());
    assert_eq!((row.carrier.as_deref(), row.shipped_at), (None, None));
    assert_eq!(row.payment_status, PaymentStatus::Refunded.as_str());
    assert_eq!((row.updated_at, row.version), (t(5), 6));
}

#[test]
fn purchase_events_and_events_of_unknown_orders_touch_nothing() {
    let events = [purchase_declined(), moved(2, Confirmed, 1), moved(3, Delivered, 2)];
    assert_eq!(to_load::<Orders>(&events), vec![ORDER]);
    assert!(fold_orders(HashMap::new(), &events).is_empty());
}

#[test]
fn a_stored_row_with_known_statuses_loads_and_an_unknown_status_is_an_error() {
    let row = fold_orders(
        HashMap::new(),
        &[placed_priced(ORDER), moved(2, Confirmed, 1), payment_failed(3, 2)],
    )
    .remove(&ORDER)
    .unwrap();
    let stored = |status: &str, payment_status: &str| OrderStatusRow {
        status: status.to_owned(),
        payment_status: payment_status.to_owned(),
        ..row.clone()
    };
    assert!(check(&row).is_ok());
    for status in OrderStatus::ALL {
        for payment in PaymentStatus::ALL {
            assert!(check(&stored(status.as_str(), payment.as_str())).is_ok());
        }
    }
    for channel in Channel::ALL {
        assert!(check(&OrderStatusRow {
            channel: channel.as_str().to_owned(),
            ..row.clone()
        })
        .is_ok());
    }
    let err = check(&stored("lost", "pending")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("order {ORDER} has status `lost`, which this version does not know")
    );
    assert_eq!(
        check(&stored("pending", "authorized")).unwrap_err().column,
        "payment_status"
    );
}

/// `ORDER` placed priced, with its two SKUs in the catalog: its stock is tracked.
fn placed_tracked() -> LoggedEvent {
    let mut placed = placed_priced(ORDER);
    let Event::Order(order::Event::OrderPlaced(order)) = &mut placed.envelope.message else {
        unreachable!("placed_priced places an order");
    };
    order.catalog_items = Some(
        [("SKU-1", 2), ("SKU-2", 1)]
            .into_iter()
            .map(|(sku, quantity)| StockLine {
                sku: Sku::parse(sku).unwrap(),
                quantity: StockQuantity::new(quantity).unwrap(),
            })
            .collect(),
    );
    placed
}

/// The order event `message_type` of `ORDER` from `fields`, as the log carries it.
fn of_wire(sequence: u64, message_type: &str, mut fields: serde_json::Value) -> LoggedEvent {
    fields["order_id"] = serde_json::json!(ORDER);
    of_order(
        sequence,
        order::Event::decode(message_type, fields.to_string().as_bytes()).unwrap(),
    )
}

fn stock_reserved(sequence: u64, n: i64) -> LoggedEvent {
    of_wire(
        sequence,
        order::ORDER_STOCK_RESERVED_V1,
        serde_json::json!({"reserved_at": t(n)}),
    )
}

fn stock_of(rows: &HashMap<Uuid, OrderStatusRow>) -> &str {
    &rows[&ORDER].stock_status
}

#[test]
fn an_order_without_catalog_items_is_not_tracked_and_stays_so() {
    let rows = stored_after(&[placed_priced(ORDER), stock_reserved(2, 1), moved(3, Cancelled, 2)]);
    assert_eq!(stock_of(&rows), StockStatus::NotTracked.as_str());
}

#[test]
fn tracked_stock_is_pending_then_reserved_then_shipped() {
    let placed = stored_after(&[placed_tracked()]);
    assert_eq!(stock_of(&placed), StockStatus::Pending.as_str());
    let item = of_wire(
        2,
        order::ORDER_ITEM_RESERVED_V1,
        serde_json::json!({"sku": "SKU-1", "reserved_at": t(1)}),
    );
    let reserved = fold_orders(placed, &[item, stock_reserved(3, 2)]);
    assert_eq!(stock_of(&reserved), StockStatus::Reserved.as_str());
    assert_eq!(reserved[&ORDER].version, 3);
    let shipped = of_wire(
        6,
        order::ORDER_SHIPPED_V1,
        serde_json::json!({"carrier": "UPS", "tracking_number": "1Z9", "shipped_at": t(5), "stock_shipped": ["SKU-1", "SKU-2"]}),
    );
    let rows = fold_orders(reserved, &[moved(4, Confirmed, 3), moved(5, Processing, 4), shipped]);
    assert_eq!(stock_of(&rows), StockStatus::Shipped.as_str());
    assert_eq!(rows[&ORDER].status, OrderStatus::Shipped.as_str());
}

#[test]
fn a_cancellation_naming_stock_releases_it_and_only_pending_stock_becomes_reserved() {
    let cancelled = of_wire(
        2,
        order::ORDER_CANCELLED_V1,
        serde_json::json!({"reason": "out of stock", "cancelled_at": t(1), "stock_released": ["SKU-1", "SKU-2"]}),
    );
    let rows = stored_after(&[placed_tracked(), cancelled]);
    assert_eq!(stock_of(&rows), StockStatus::Released.as_str());
    // A late reservation of released stock cannot have been decided: the stock stays released.
    let late = fold_orders(rows, &[stock_reserved(3, 2)]);
    assert_eq!(stock_of(&late), StockStatus::Released.as_str());
    assert_eq!(late[&ORDER].version, 3);
}

#[test]
fn a_stored_row_with_an_unknown_stock_status_is_an_error() {
    let row = stored_after(&[placed_tracked()]).remove(&ORDER).unwrap();
    for stock in StockStatus::ALL {
        assert!(check(&OrderStatusRow {
            stock_status: stock.as_str().to_owned(),
            ..row.clone()
        })
        .is_ok());
    }
    let err = check(&OrderStatusRow {
        stock_status: "lost".to_owned(),
        ..row
    })
    .unwrap_err();
    assert_eq!(err.column, "stock_status");
}
