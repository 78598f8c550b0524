//! The fold of `products`, on events read from their wire form: no Kafka, no PostgreSQL.

use std::collections::HashMap;

use super::*;
use crate::projection::{fold, logged, to_load};
use chrono::{DateTime, Utc};
use domain::pricing::Sku;
use domain::{order, Event, Message};
use serde_json::{json, Value};
use uuid::Uuid;

const SKU: &str = "TEA-GREEN-100";

fn product_id() -> Uuid {
    product::product_id(&Sku::parse(SKU).unwrap())
}

/// The time of the `n`th step after the definition.
fn t(n: i64) -> DateTime<Utc> {
    "2025-01-19T15:04:05Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(n)
}

/// The event `message_type` of the product at `sequence` from `fields`, with the product's id and
/// SKU added, as the log carries it.
fn event(sequence: u64, message_type: &str, mut fields: Value) -> LoggedEvent {
    fields["product_id"] = json!(product_id());
    fields["sku"] = json!(SKU);
    let event = product::Event::decode(message_type, fields.to_string().as_bytes())
        .unwrap_or_else(|err| panic!("{message_type} from {fields}: {err}"));
    logged(sequence, Event::Product(event))
}

fn price(minor: i64) -> Value {
    json!({"minor": minor, "currency": "USD"})
}

fn defined() -> LoggedEvent {
    event(
        1,
        product::PRODUCT_DEFINED_V1,
        json!({"name": "Green tea", "description": "Loose leaf, 100 g", "price": price(1_250), "defined_at": t(0)}),
    )
}

fn received(sequence: u64, quantity: u32, on_hand: u64, n: i64) -> LoggedEvent {
    event(
        sequence,
        product::STOCK_RECEIVED_V1,
        json!({"quantity": quantity, "on_hand": on_hand, "received_at": t(n)}),
    )
}

/// Stock for an order: `reserved`, `released`, `shipped` or a refused reservation.
fn for_order(sequence: u64, message_type: &str, quantity: u32, n: i64) -> LoggedEvent {
    let at = match message_type {
        product::STOCK_RESERVED_V1 => "reserved_at",
        product::STOCK_RELEASED_V1 => "released_at",
        product::STOCK_SHIPPED_V1 => "shipped_at",
        product::STOCK_RESERVATION_REFUSED_V1 => "refused_at",
        other => panic!("{other} is not about an order's stock"),
    };
    let mut fields = json!({"order_id": Uuid::from_u128(0x0001), "quantity": quantity, "available": 0});
    fields[at] = json!(t(n));
    event(sequence, message_type, fields)
}

fn fold_products(loaded: HashMap<Uuid, ProductRow>, events: &[LoggedEvent]) -> HashMap<Uuid, ProductRow> {
    fold(&mut Products, loaded, events)
}

#[test]
fn a_definition_starts_the_row_with_no_stock() {
    let rows = fold_products(HashMap::new(), &[defined()]);
    assert_eq!(
        rows[&product_id()],
        ProductRow {
            product_id: product_id(),
            sku: SKU.to_owned(),
            name: "Green tea".to_owned(),
            description: Some("Loose leaf, 100 g".to_owned()),
            price_minor: 1_250,
            currency: "USD".to_owned(),
            on_hand: 0,
            reserved: 0,
            version: 1,
            defined_at: t(0),
            updated_at: t(0),
        }
    );
}

#[test]
fn stock_moves_with_receipts_adjustments_reservations_releases_and_shipments() {
    let events = [
        defined(),
        received(2, 10, 10, 1),
        for_order(3, product::STOCK_RESERVED_V1, 4, 2),
        for_order(4, product::STOCK_RESERVATION_REFUSED_V1, 9, 3),
        event(
            5,
            product::STOCK_ADJUSTED_V1,
            json!({"quantity": -2, "reason": "damaged in storage", "on_hand": 8, "adjusted_at": t(4)}),
        ),
        for_order(6, product::STOCK_SHIPPED_V1, 4, 5),
        for_order(7, product::STOCK_RESERVED_V1, 3, 6),
        for_order(8, product::STOCK_RELEASED_V1, 3, 7),
    ];
    assert!(to_load::<Products>(&events).is_empty());
    let after = |n: usize| {
        fold_products(HashMap::new(), &events[..n])
            .remove(&product_id())
            .unwrap()
    };
    let stock = |row: ProductRow| (row.on_hand, row.reserved, row.version, row.updated_at);
    assert_eq!(stock(after(2)), (10, 0, 2, t(1)));
    assert_eq!(stock(after(3)), (10, 4, 3, t(2)));
    // A refusal holds nothing; it only counts as the product's latest event.
    assert_eq!(stock(after(4)), (10, 4, 4, t(3)));
    // An adjustment carries what is on hand after it.
    assert_eq!(stock(after(5)), (8, 4, 5, t(4)));
    // Shipped stock leaves: on hand and reserved both go down.
    assert_eq!(stock(after(6)), (4, 0, 6, t(5)));
    assert_eq!(stock(after(7)), (4, 3, 7, t(6)));
    assert_eq!(stock(after(8)), (4, 0, 8, t(7)));
    assert_eq!(after(8).defined_at, t(0));
}

#[test]
fn a_change_replaces_name_description_and_price() {
    let changed = event(
        3,
        product::PRODUCT_CHANGED_V1,
        json!({"name": "Sencha", "description": null, "price": price(1_400), "changed_at": t(2)}),
    );
    let stored = fold_products(HashMap::new(), &[defined(), received(2, 5, 5, 1)]);
    let events = [changed];
    assert_eq!(to_load::<Products>(&events), vec![product_id()]);
    let row = &fold_products(stored, &events)[&product_id()];
    assert_eq!(
        (
            row.name.as_str(),
            row.description.as_deref(),
            row.price_minor,
            row.currency.as_str()
        ),
        ("Sencha", None, 1_400, "USD")
    );
    assert_eq!((row.on_hand, row.version, row.updated_at), (5, 3, t(2)));
}

#[test]
fn a_batch_passes_over_what_the_stored_row_already_holds() {
    let stored = fold_products(HashMap::new(), &[defined(), received(2, 10, 10, 1)]);
    let events = [received(2, 10, 10, 1), for_order(3, product::STOCK_RESERVED_V1, 4, 2)];
    let rows = fold_products(stored, &events);
    assert_eq!((rows[&product_id()].on_hand, rows[&product_id()].reserved), (10, 4));
    assert_eq!(fold_products(rows.clone(), &events), rows);
}

#[test]
fn events_of_other_aggregates_and_of_undefined_products_touch_nothing() {
    let orders = domain::testing::OrderEvents {
        order_id: Uuid::from_u128(0x0001),
        purchase_id: Uuid::from_u128(0x2222),
    };
    let events = [
        logged(2, Event::Order(orders.moved(order::OrderStatus::Confirmed, t(1)))),
        received(2, 10, 10, 1),
    ];
    assert_eq!(to_load::<Products>(&events), vec![product_id()]);
    assert!(fold_products(HashMap::new(), &events).is_empty());
}
