//! `products` against the real broker and database: a catalog's events fold into one row per
//! product with its stock, and `projectors rebuild products` swaps in the same rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::pricing::Sku;
use domain::{product, Event, Message};
use rdkafka::producer::FutureProducer;
use read_models::products::ProductRow;
use serde_json::{json, Value};
use service_kit::kafka::Envelope;
use service_kit::testing::{free_port, produce, wait_until, Isolation};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{applied, prepared, projectors, start_projector, succeeded};

const PRODUCTS: usize = 30;

fn at(minute: i64) -> DateTime<Utc> {
    "2025-01-19T15:04:05Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
}

/// The `sequence`th event of the product sold under `sku`, `message_type` from `fields`, in the
/// envelope the decider writes it in.
fn product_event(sku: &str, sequence: u64, message_type: &str, mut fields: Value) -> Envelope<Event> {
    let product_id = product::product_id(&Sku::parse(sku).unwrap());
    fields["product_id"] = json!(product_id);
    fields["sku"] = json!(sku);
    let event = product::Event::decode(message_type, fields.to_string().as_bytes())
        .unwrap_or_else(|err| panic!("{message_type} from {fields}: {err}"));
    Envelope {
        id: Uuid::new_v4(),
        time: event.occurred_at(),
        sequence: Some(sequence),
        causation_id: None,
        correlation_id: product_id,
        traceparent: None,
        message: Event::Product(event),
    }
}

/// Every product is defined at 12.50 USD, receives 10 units and reserves 3 for an order, which is
/// then released (even products) or shipped (odd ones); every fifth product is renamed last.
fn catalog() -> Vec<Envelope<Event>> {
    let order_id = Uuid::from_u128(0x0001);
    let mut events = Vec::new();
    for i in 0..PRODUCTS {
        let sku = format!("SKU-{i:03}");
        let n = i as i64;
        let price = json!({"minor": 1_250, "currency": "USD"});
        events.push(product_event(
            &sku,
            1,
            product::PRODUCT_DEFINED_V1,
            json!({"name": format!("Product {i}"), "description": null, "price": price, "defined_at": at(n)}),
        ));
        events.push(product_event(
            &sku,
            2,
            product::STOCK_RECEIVED_V1,
            json!({"quantity": 10, "on_hand": 10, "received_at": at(n + 1)}),
        ));
        events.push(product_event(
            &sku,
            3,
            product::STOCK_RESERVED_V1,
            json!({"order_id": order_id, "quantity": 3, "reserved_at": at(n + 2)}),
        ));
        let (ended, ended_at) = if i % 2 == 0 {
            (product::STOCK_RELEASED_V1, "released_at")
        } else {
            (product::STOCK_SHIPPED_V1, "shipped_at")
        };
        let mut end = json!({"order_id": order_id, "quantity": 3});
        end[ended_at] = json!(at(n + 3));
        events.push(product_event(&sku, 4, ended, end));
        if i % 5 == 0 {
            events.push(product_event(
                &sku,
                5,
                product::PRODUCT_CHANGED_V1,
                json!({"name": format!("Renamed {i}"), "description": "Now described", "price": price, "changed_at": at(n + 4)}),
            ));
        }
    }
    events
}

async fn wait_caught_up(isolation: &Isolation, pool: &PgPool) {
    let written = isolation.records_written(&isolation.topics.events);
    wait_until("products to catch up", Duration::from_secs(60), || async {
        (applied(pool, "products").await >= written).then_some(())
    })
    .await;
}

async fn rows(pool: &PgPool) -> Vec<ProductRow> {
    let mut rows = Vec::new();
    for i in 0..PRODUCTS {
        let sku = format!("SKU-{i:03}");
        rows.push(read_models::products::by_sku(pool, &sku).await.unwrap().expect(&sku));
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_folds_into_one_row_per_product_and_rebuilds_the_same() {
    let (isolation, pool) = prepared().await;
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    produce(&producer, &isolation.topics.events, catalog()).await;
    let _projector = start_projector(&isolation, free_port(), 7);
    wait_caught_up(&isolation, &pool).await;

    let folded = rows(&pool).await;
    for (i, row) in folded.iter().enumerate() {
        let n = i as i64;
        let renamed = i % 5 == 0;
        // Released stock stays on hand; shipped stock left.
        let on_hand = if i % 2 == 0 { 10 } else { 7 };
        let updated_at = if renamed { at(n + 4) } else { at(n + 3) };
        assert_eq!(
            row,
            &ProductRow {
                product_id: product::product_id(&Sku::parse(&row.sku).unwrap()),
                sku: format!("SKU-{i:03}"),
                name: if renamed {
                    format!("Renamed {i}")
                } else {
                    format!("Product {i}")
                },
                description: renamed.then(|| "Now described".to_owned()),
                price_minor: 1_250,
                currency: "USD".to_owned(),
                on_hand,
                reserved: 0,
                version: if renamed { 5 } else { 4 },
                defined_at: at(n),
                updated_at,
            }
        );
    }

    let stdout = succeeded(&projectors(&isolation, &["rebuild", "products"]).await);
    assert!(stdout.contains("products: swapped in"), "{stdout}");
    wait_caught_up(&isolation, &pool).await;
    assert_eq!(rows(&pool).await, folded, "the rebuilt rows are the folded ones");
}
