//! The raw limits every figure is set against: what Kafka and PostgreSQL do on their own, on
//! records and rows shaped like ours.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::order::{OrderNote, OrderPlaced};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use service_kit::kafka::KafkaArgs;
use service_kit::testing::{order_placed, placed_envelope, produce};
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Rate, PARTITIONS};

pub(crate) async fn create_topic(kafka: &KafkaArgs, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = kafka.client_config().create().expect("admin");
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(-1));
    admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .expect("create topic");
}

/// Writes `count` `OrderPlaced` events (with CloudEvents headers) to `topic` as fast as the
/// producer goes.
pub(crate) async fn produce_events(kafka: &KafkaArgs, topic: &str, count: usize) -> Rate {
    let producer: FutureProducer = kafka
        .producer_config()
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()
        .expect("producer");
    let base: DateTime<Utc> = "2025-01-19T15:04:05Z".parse().unwrap();
    let started = Instant::now();
    let events = (0..count).map(|i| {
        let placed = order_placed(
            &format!("customer {}", i % 5000),
            base + chrono::Duration::milliseconds(i as i64),
        );
        placed_envelope(OrderPlaced {
            note: Some(OrderNote::parse("First order").unwrap()),
            ..placed
        })
    });
    produce(&producer, topic, events).await;
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}

pub(crate) async fn consume_all(kafka: &KafkaArgs, topic: &str, count: usize) -> Rate {
    let consumer: StreamConsumer = kafka.consumer_config("bench-raw").create().expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..count {
        let message = consumer.recv().await.expect("record");
        bytes += rdkafka::Message::payload(&message).map_or(0, <[u8]>::len);
    }
    assert!(bytes > 0);
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}

/// `COPY` of `count` rows shaped like `order_status` into a copy of that table with every index
/// and constraint (what a live projection writes into).
pub(crate) async fn copy_indexed(pool: &PgPool, count: usize) -> Rate {
    copy_into(
        pool,
        "CREATE TABLE bench_copy (LIKE order_status INCLUDING ALL)",
        "bench_copy",
        count,
    )
    .await
}

/// `COPY` of the same rows into an unlogged copy of `order_status` without indexes or
/// constraints: the most PostgreSQL can take in, and how a rebuild fills its tables.
pub(crate) async fn copy_unlogged(pool: &PgPool, count: usize) -> Rate {
    copy_into(
        pool,
        "CREATE UNLOGGED TABLE bench_copy_unlogged (LIKE order_status INCLUDING DEFAULTS)",
        "bench_copy_unlogged",
        count,
    )
    .await
}

async fn copy_into(pool: &PgPool, create: &str, table: &str, count: usize) -> Rate {
    sqlx::query(create).execute(pool).await.expect("bench table");
    let mut data = Vec::with_capacity(count * 120);
    for i in 0..count {
        data.extend_from_slice(
            format!(
                "{}\tcustomer {}\tFirst order\tpending\t2025-01-19 15:04:05+00\t2025-01-19 15:04:05+00\t1\n",
                Uuid::new_v4(),
                i % 5000
            )
            .as_bytes(),
        );
    }
    let started = Instant::now();
    let mut copy = pool
        .copy_in_raw(&format!(
            "COPY {table} (order_id, name, note, status, placed_at, updated_at, version) FROM STDIN"
        ))
        .await
        .expect("copy");
    copy.send(data).await.expect("copy data");
    copy.finish().await.expect("copy done");
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}

/// `count` events of 5,000 customer names counted into a copy of `track_user`: each batch of
/// `batch` events folded in memory to one row per name, written by one `UNNEST` upsert that adds
/// to the stored counter, one transaction per batch. The events/s of the best same-shaped write.
pub(crate) async fn folded_upserts(pool: &PgPool, count: usize, batch: usize) -> Rate {
    sqlx::query("CREATE TABLE bench_counter (LIKE track_user INCLUDING ALL)")
        .execute(pool)
        .await
        .expect("bench table");
    let at: DateTime<Utc> = "2025-01-19T15:04:05Z".parse().unwrap();
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let size = batch.min(count - done);
        let mut counts: HashMap<usize, i64> = HashMap::new();
        for i in done..done + size {
            *counts.entry(i % 5000).or_default() += 1;
        }
        let names: Vec<String> = counts.keys().map(|n| format!("customer {n}")).collect();
        let ids: Vec<Uuid> = names.iter().map(|_| Uuid::new_v4()).collect();
        let counters: Vec<i64> = counts.values().copied().collect();
        sqlx::query(
            "INSERT INTO bench_counter (id, name, counter, created_at) \
             SELECT id, name, counter, $4 FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS t(id, name, counter) \
             ON CONFLICT (name) DO UPDATE SET counter = bench_counter.counter + EXCLUDED.counter, \
               created_at = LEAST(bench_counter.created_at, EXCLUDED.created_at)",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&counters)
        .bind(at)
        .execute(pool)
        .await
        .expect("folded upsert");
        done += size;
    }
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}
