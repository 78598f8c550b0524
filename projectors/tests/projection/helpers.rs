use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::order::{Event, OrderName, OrderPlaced};
use projectors::db;
use rdkafka::producer::FutureRecord;
use rdkafka::producer::{FutureProducer, Producer};
use service_kit::kafka::Envelope;
use service_kit::testing::Isolation;
use sqlx::PgPool;
use uuid::Uuid;

/// A test's isolation with its topics created and its schema migrated.
pub(crate) async fn prepared() -> (Isolation, PgPool) {
    let isolation = Isolation::new();
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    let pool = isolation.database.pool().expect("pool");
    db::migrate(&pool, &isolation.database.database_schema)
        .await
        .expect("migrations");
    (isolation, pool)
}

/// What `track_user` must hold for a name once every event is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) counter: i64,
    pub(crate) created_at: DateTime<Utc>,
}

/// Writes `count` `OrderPlaced` events straight to the events topic, spread over `names` and
/// with times out of order, and returns what `track_user` must end up holding.
pub(crate) async fn write_orders(isolation: &Isolation, count: usize, names: usize) -> BTreeMap<String, Expected> {
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let base: DateTime<Utc> = "2025-01-19T15:04:05Z".parse().unwrap();
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("customer {:03}", i % names);
        // Later orders sometimes carry earlier times, as orders from several partitions would.
        let placed_at = base + chrono::Duration::seconds(((i * 7919) % count) as i64);
        let order_id = Uuid::new_v4();
        let envelope = Envelope {
            id: Uuid::new_v4(),
            time: placed_at,
            sequence: Some(1),
            causation_id: Some(Uuid::new_v4()),
            correlation_id: order_id,
            traceparent: None,
            message: Event::OrderPlaced(OrderPlaced {
                order_id,
                name: OrderName::parse(&name).unwrap(),
                note: None,
                placed_at,
                details: None,
                channel: domain::order::Channel::Api,
                user_id: None,
            }),
        };
        let entry = expected.entry(name).or_insert(Expected {
            counter: 0,
            created_at: placed_at,
        });
        entry.counter += 1;
        entry.created_at = entry.created_at.min(placed_at);
        let (key, payload) = (envelope.key(), envelope.payload());
        let record = FutureRecord::to(&isolation.topics.events)
            .key(&key)
            .payload(&payload)
            .headers(envelope.headers());
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
    for delivery in deliveries {
        delivery.await.expect("delivered").expect("written");
    }
    expected
}

/// Adds the orders of `more` to `into`.
pub(crate) fn merge(into: &mut BTreeMap<String, Expected>, more: BTreeMap<String, Expected>) {
    for (name, expected) in more {
        into.entry(name)
            .and_modify(|e| {
                e.counter += expected.counter;
                e.created_at = e.created_at.min(expected.created_at);
            })
            .or_insert(expected);
    }
}

/// Events `projection` has applied so far, by its checkpoints.
pub(crate) async fn applied(pool: &PgPool, projection: &str) -> i64 {
    db::checkpoints(pool, projection)
        .await
        .expect("checkpoints")
        .values()
        .sum()
}

/// Rows of `track_user` as name → (counter, created_at).
pub(crate) async fn track_users(pool: &PgPool) -> BTreeMap<String, Expected> {
    let rows: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as("SELECT name, counter, created_at FROM track_user")
        .fetch_all(pool)
        .await
        .expect("track_user rows");
    rows.into_iter()
        .map(|(name, counter, created_at)| (name, Expected { counter, created_at }))
        .collect()
}
