//! A log holding both versions of `OrderPlaced` projects as one: v1 events (written before orders
//! had a channel) are upcast to `channel = api` on decoding, v2 events keep theirs.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::order::{Channel, Event, OrderPlaced, ORDER_PLACED_V1, ORDER_PLACED_V3};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use service_kit::kafka::Envelope;
use service_kit::testing::{free_port, headers_as, order_placed, placed_envelope, wait_until, ChildService, Isolation};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{applied, prepared, track_users, Expected};

/// One order on the log, and which version wrote it.
struct Placed {
    order_id: Uuid,
    name: &'static str,
    placed_at: DateTime<Utc>,
    /// `None`: a v1 event, without a channel.
    channel: Option<Channel>,
}

fn at(minute: i64) -> DateTime<Utc> {
    "2025-01-19T15:04:05Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
}

/// `order` in the envelope the command side writes today, placed through `channel`.
fn envelope(order: &Placed, channel: Channel) -> Envelope<Event> {
    placed_envelope(OrderPlaced {
        order_id: order.order_id,
        channel,
        ..order_placed(order.name, order.placed_at)
    })
}

/// The headers the command side wrote before v2 existed: a v1 `ce_type`, and nothing else new.
fn v1_headers(order: &Placed) -> OwnedHeaders {
    headers_as(&envelope(order, Channel::Api), ORDER_PLACED_V1, &[])
}

/// v1 JSON, exactly as the first version wrote it: no `channel`. The first order also carries
/// priced details, so the upcast is seen to keep everything else.
fn v1_payload(order: &Placed, priced: bool) -> Vec<u8> {
    let mut json = serde_json::json!({
        "order_id": order.order_id,
        "name": order.name,
        "note": "written by v1",
        "placed_at": order.placed_at,
    });
    if priced {
        json["details"] = serde_json::json!({
            "currency": "USD",
            "items": [{"sku": "MUG-1", "name": "Blue mug", "quantity": 2, "unit_price": {"minor": 1234, "currency": "USD"}}],
            "totals": {
                "subtotal": {"minor": 2468, "currency": "USD"},
                "tax": {"minor": 197, "currency": "USD"},
                "shipping": {"minor": 999, "currency": "USD"},
                "total": {"minor": 3664, "currency": "USD"},
            },
        });
    }
    serde_json::to_vec(&json).unwrap()
}

/// Writes `orders` to the events topic in the given order: v1 ones as raw records, v2 ones
/// through the envelope the command side uses today.
async fn write(isolation: &Isolation, orders: &[Placed]) {
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let mut deliveries = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let key = order.order_id.to_string();
        let delivery = match order.channel {
            None => {
                let payload = v1_payload(order, i == 0);
                let record = FutureRecord::to(&isolation.topics.events)
                    .key(&key)
                    .payload(&payload)
                    .headers(v1_headers(order));
                producer.send_result(record).map_err(|(e, _)| e).expect("queued")
            }
            Some(channel) => {
                let envelope = envelope(order, channel);
                let headers = envelope.headers();
                let payload = envelope.payload();
                assert!(
                    String::from_utf8_lossy(&payload).contains("\"channel\""),
                    "v2 data carries its channel"
                );
                let record = FutureRecord::to(&isolation.topics.events)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers);
                producer.send_result(record).map_err(|(e, _)| e).expect("queued")
            }
        };
        deliveries.push(delivery);
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
    for delivery in deliveries {
        delivery.await.expect("delivered").expect("written");
    }
}

async fn channel_of(pool: &PgPool, order_id: Uuid) -> String {
    sqlx::query_scalar("SELECT channel FROM order_status WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(pool)
        .await
        .expect("order_status row")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_of_v1_and_v2_order_placed_projects_as_one() {
    let (isolation, pool) = prepared().await;
    // v1 first, as on a real log, then v2; two names span both versions.
    let v1 = |name, minute| Placed {
        order_id: Uuid::new_v4(),
        name,
        placed_at: at(minute),
        channel: None,
    };
    let v2 = |name, minute| Placed {
        order_id: Uuid::new_v4(),
        name,
        placed_at: at(minute),
        channel: Some(Channel::Web),
    };
    let orders = [
        v1("Ada", 0),
        v1("Ada", 1),
        v1("Grace", 2),
        v1("Linus", 3),
        v2("Ada", 4),
        v2("Grace", 5),
        v2("Margaret", 6),
    ];
    write(&isolation, &orders).await;
    let total = orders.len() as i64;

    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{}", free_port())));
    let _projector = ChildService::spawn(Path::new(env!("CARGO_BIN_EXE_projectors")), &["run"], &env);
    wait_until("every event to be applied", Duration::from_secs(60), || async {
        let done = [
            applied(&pool, "track_user").await,
            applied(&pool, "order_status").await,
            applied(&pool, "order_history").await,
        ];
        done.iter().all(|n| *n >= total).then_some(())
    })
    .await;

    // order_status: v1 orders were placed through the API, v2 ones keep their channel.
    for order in &orders {
        let expected = match order.channel {
            None => "api",
            Some(channel) => channel.as_str(),
        };
        assert_eq!(
            channel_of(&pool, order.order_id).await,
            expected,
            "{} at {}",
            order.name,
            order.placed_at
        );
    }
    assert_eq!(channel_of(&pool, orders[4].order_id).await, "web");
    // The upcast kept what v1 carried.
    let (note, item_count, total_minor): (Option<String>, i32, Option<i64>) =
        sqlx::query_as("SELECT note, item_count, total_minor FROM order_status WHERE order_id = $1")
            .bind(orders[0].order_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (note.as_deref(), item_count, total_minor),
        (Some("written by v1"), 2, Some(3_664))
    );

    // track_user counts both versions alike.
    let expected: std::collections::BTreeMap<String, Expected> = [
        ("Ada", 3, at(0)),
        ("Grace", 2, at(2)),
        ("Linus", 1, at(3)),
        ("Margaret", 1, at(6)),
    ]
    .into_iter()
    .map(|(name, counter, created_at)| (name.to_owned(), Expected { counter, created_at }))
    .collect();
    assert_eq!(track_users(&pool).await, expected);

    // Nothing downstream sees v1: the history holds every placing in the current shape.
    let history: Vec<(String, String)> =
        sqlx::query_as("SELECT event_type, data::text FROM order_history WHERE order_id = $1")
            .bind(orders[0].order_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].0, ORDER_PLACED_V3);
    let data: serde_json::Value = serde_json::from_str(&history[0].1).unwrap();
    assert_eq!(data["channel"], "api");
}
