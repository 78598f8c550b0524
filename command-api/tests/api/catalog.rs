//! The catalog and the stock reservation saga against the real broker: prices come from the
//! catalog on any replica as soon as a `PUT` is answered, and orders racing for the last units
//! never both get them.

use std::collections::HashMap;
use std::time::Duration;

use domain::order::{self, OUT_OF_STOCK};
use domain::product;
use domain::{Event, Message as _};
use futures::future::join_all;
use rdkafka::message::OwnedMessage;
use rdkafka::Message as _;
use serde_json::{json, Value};
use service_kit::testing::wait_until;

use crate::helpers::{assert_problem, committed_records, header, produce_raw, spawn_app, RawRecord, TestApp};

/// `PUT /api/v1/products/{sku}`.
async fn define(app: &TestApp, sku: &str, price: f64) -> reqwest::Response {
    app.client
        .put(format!("{}/api/v1/products/{sku}", app.address))
        .json(&json!({"name": format!("Product {sku}"), "price": price, "currency": "USD"}))
        .send()
        .await
        .expect("command-api answers")
}

/// Defines `sku` at 4.50 USD with `on_hand` units.
async fn stock(app: &TestApp, sku: &str, on_hand: u32) {
    assert_eq!(define(app, sku, 4.5).await.status(), 201);
    let received = app
        .post(
            &format!("/api/v1/products/{sku}/stock-receipts"),
            &json!({"quantity": on_hand}),
            None,
        )
        .await;
    assert_eq!(received.status(), 200, "{:?}", received.text().await);
}

/// Places an order of `items` (sku, quantity) at the catalog's prices; the placed order.
async fn place(app: &TestApp, items: &[(&str, u32)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    let response = app
        .place(&json!({"name": "Ada", "currency": "USD", "items": items}), None)
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// An order of `items` (sku, quantity) at the catalog's prices; its id.
async fn order(app: &TestApp, items: &[(&str, u32)]) -> String {
    place(app, items).await["order_id"].as_str().unwrap().to_owned()
}

/// Every event on the log, decoded.
async fn events(app: &TestApp) -> Vec<(OwnedMessage, Event)> {
    committed_records(&app.isolation, &app.isolation.topics.events)
        .await
        .into_iter()
        .filter_map(|record| {
            let event = Event::decode(header(&record, "ce_type")?, record.payload()?).ok()?;
            Some((record, event))
        })
        .collect()
}

/// Waits until every order of `orders` has its stock reserved or is cancelled; returns, per
/// order, whether its stock was reserved.
async fn settled(app: &TestApp, orders: &[String]) -> HashMap<String, bool> {
    wait_until("every order's stock settled", Duration::from_secs(60), || async {
        let mut outcome = HashMap::new();
        for (_, event) in events(app).await {
            match event {
                Event::Order(order::Event::OrderStockReserved(e)) => {
                    outcome.insert(e.order_id.to_string(), true);
                }
                Event::Order(order::Event::OrderCancelled(e)) => {
                    assert_eq!(e.reason.as_str(), OUT_OF_STOCK);
                    outcome.insert(e.order_id.to_string(), false);
                }
                _ => {}
            }
        }
        orders.iter().all(|o| outcome.contains_key(o)).then_some(outcome)
    })
    .await
}

/// The product of `sku` folded from the log.
async fn product(app: &TestApp, sku: &str) -> product::DefinedProduct {
    let product_events: Vec<product::Event> = events(app)
        .await
        .into_iter()
        .filter_map(|(_, event)| match event {
            Event::Product(event) => Some(event),
            _ => None,
        })
        .filter(|event| event_sku(event) == sku)
        .collect();
    match <product::Product as domain::Decider>::fold(&product_events) {
        product::State::Defined(product) => product,
        product::State::Undefined => panic!("{sku} is not defined"),
    }
}

fn event_sku(event: &product::Event) -> &str {
    use product::Event as E;
    match event {
        E::ProductDefined(e) => e.sku.as_str(),
        E::ProductChanged(e) => e.sku.as_str(),
        E::StockReceived(e) => e.sku.as_str(),
        E::StockAdjusted(e) => e.sku.as_str(),
        E::StockReserved(e) => e.sku.as_str(),
        E::StockReservationRefused(e) => e.sku.as_str(),
        E::StockReleased(e) => e.sku.as_str(),
        E::StockShipped(e) => e.sku.as_str(),
    }
}

#[tokio::test]
async fn fifty_orders_for_ten_units_reserve_exactly_ten() {
    let app = spawn_app().await;
    stock(&app, "LAST-10", 10).await;
    let orders: Vec<String> = join_all((0..50).map(|_| order(&app, &[("LAST-10", 1)]))).await;
    let outcome = settled(&app, &orders).await;
    assert_eq!(outcome.values().filter(|reserved| **reserved).count(), 10);
    assert_eq!(outcome.values().filter(|reserved| !**reserved).count(), 40);
    let last = product(&app, "LAST-10").await;
    assert_eq!((last.on_hand, last.reserved, last.available()), (10, 10, 0));
    assert_eq!(last.reservations.len(), 10);
}

#[tokio::test]
async fn an_order_short_of_one_item_gives_back_the_others_and_cancelling_gives_back_all() {
    let app = spawn_app().await;
    stock(&app, "TEA-2", 5).await;
    stock(&app, "CUP-2", 1).await;
    let short = order(&app, &[("TEA-2", 2), ("CUP-2", 2)]).await;
    let held = order(&app, &[("TEA-2", 3)]).await;
    let outcome = settled(&app, &[short.clone(), held.clone()]).await;
    assert_eq!((outcome[&short], outcome[&held]), (false, true));
    wait_until("the short order's tea given back", Duration::from_secs(30), || async {
        (product(&app, "TEA-2").await.reserved == 3).then_some(())
    })
    .await;
    let cancelled = app
        .post(
            &format!("/api/v1/orders/{held}/cancel"),
            &json!({"reason": "changed my mind"}),
            None,
        )
        .await;
    assert_eq!(cancelled.status(), 200, "{:?}", cancelled.text().await);
    wait_until(
        "the cancelled order's tea given back",
        Duration::from_secs(30),
        || async {
            let tea = product(&app, "TEA-2").await;
            (tea.reserved == 0).then_some(tea.on_hand)
        },
    )
    .await;
    assert_eq!(product(&app, "CUP-2").await.reserved, 0);
}

#[tokio::test]
async fn an_order_takes_the_price_put_just_before_and_refuses_an_old_one() {
    let app = spawn_app().await;
    assert_eq!(define(&app, "PEN-3", 2.0).await.status(), 201);
    let changed = define(&app, "PEN-3", 2.5).await;
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.json::<Value>().await.unwrap()["status"], "changed");
    let unchanged = define(&app, "PEN-3", 2.5).await;
    assert_eq!(unchanged.json::<Value>().await.unwrap()["status"], "unchanged");
    let old = app
        .place(
            &json!({"name": "Ada", "currency": "USD", "items": [{"sku": "PEN-3", "quantity": 1, "unit_price": 2.0}]}),
            None,
        )
        .await;
    let problem = assert_problem(old, 409, Some("items[0].unit_price")).await;
    assert_eq!(problem["current_price"], "2.50");
    let placed = place(&app, &[("PEN-3", 4)]).await;
    assert_eq!(placed["totals"]["subtotal"], "10.00");
}

#[tokio::test]
async fn stock_is_never_adjusted_below_what_orders_hold() {
    let app = spawn_app().await;
    stock(&app, "BOX-4", 4).await;
    let held = order(&app, &[("BOX-4", 3)]).await;
    assert!(settled(&app, &[held]).await.values().all(|reserved| *reserved));
    let path = "/api/v1/products/BOX-4/stock-adjustments";
    let below = app
        .post(path, &json!({"quantity": -2, "reason": "damaged"}), None)
        .await;
    let problem = assert_problem(below, 409, None).await;
    assert_eq!(problem["type"], "/problems/below-reserved");
    assert_eq!(problem["reserved"], 3);
    let fine = app
        .post(path, &json!({"quantity": -1, "reason": "damaged"}), None)
        .await;
    assert_eq!(fine.status(), 200);
    let unknown = app
        .post("/api/v1/products/NOPE-1/stock-receipts", &json!({"quantity": 1}), None)
        .await;
    assert_problem(unknown, 404, None).await;
    let box4 = product(&app, "BOX-4").await;
    assert_eq!((box4.on_hand, box4.reserved), (3, 3));
}

#[tokio::test]
async fn records_on_the_catalog_topic_that_no_code_of_ours_wrote_do_not_stop_the_catalog() {
    let app = spawn_app().await;
    let junk = |key, payload: &[u8]| RawRecord {
        partition: Some(0),
        key: Some(key),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    produce_raw(
        &app.isolation,
        &app.isolation.topics.catalog,
        vec![
            junk("PEN-5", b"not json"),
            junk(
                "PEN-5",
                br#"{"sku":"PEN-5","name":"Pen","price":{"minor":-1,"currency":"XXX"}}"#,
            ),
            junk(
                "PEN-5",
                br#"{"sku":"bad sku","name":"Pen","price":{"minor":100,"currency":"USD"}}"#,
            ),
            junk("PEN-5", b""),
        ],
    )
    .await;
    assert_eq!(define(&app, "PEN-5", 1.25).await.status(), 201);
    let placed = place(&app, &[("PEN-5", 2)]).await;
    assert_eq!(placed["totals"]["subtotal"], "2.50");
}
