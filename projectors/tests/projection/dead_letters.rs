//! Records no projection can apply — undecodable ones written by a foreign producer, or events
//! whose values PostgreSQL refuses — become dead letters, and every other record keeps flowing:
//! through kills, restarts and rebuilds, nothing is applied or set aside twice, and a dead
//! letter applies on retry once its cause is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use domain::order::{Event, OrderPlaced, ORDER_PLACED_V2};
use domain::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use service_kit::kafka::Envelope;
use service_kit::testing::{free_port, headers_as, order_placed, placed_envelope, produce, wait_until, Isolation};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    applied, merge, metrics, prepared, projectors, start_projector, stdout, succeeded, track_users, write_orders,
    Expected,
};

const PROJECTIONS: [&str; 5] = ["track_user", "order_status", "order_history", "purchases", "products"];
/// The projections that read `OrderPlaced`; `purchases` passes over it.
const ORDER_PROJECTIONS: [&str; 3] = ["track_user", "order_status", "order_history"];

/// A record written straight to the events topic, as a foreign producer or an old bug would.
struct Malformed {
    what: &'static str,
    key: String,
    headers: Option<OwnedHeaders>,
    payload: Vec<u8>,
    /// The projections that must set it aside, each recording an error containing this text.
    dead_in: Vec<(&'static str, &'static str)>,
}

/// Where a malformed record landed on the log.
struct Landed {
    what: &'static str,
    partition: i32,
    offset: i64,
    dead_in: Vec<(&'static str, &'static str)>,
}

/// An `OrderPlaced` for `order_id` as the command side writes it, for a test to spoil.
fn placed(order_id: Uuid) -> Envelope<Event> {
    let placed_at = "2025-01-19T15:04:05Z".parse().unwrap();
    placed_envelope(OrderPlaced {
        order_id,
        ..order_placed("Foreign Producer", placed_at)
    })
}

/// The CloudEvents headers of an `OrderPlaced` for `order_id`, as the command side writes them,
/// with `ce_type` set to `message_type` and the headers named in `without` left out.
fn headers(order_id: Uuid, message_type: &str, without: &[&str]) -> OwnedHeaders {
    headers_as(&placed(order_id), message_type, without)
}

/// An `OrderPlaced` as JSON, for a test to spoil.
fn placed_json(order_id: Uuid) -> serde_json::Value {
    serde_json::from_slice(&placed(order_id).payload()).unwrap()
}

fn everywhere(error: &'static str) -> Vec<(&'static str, &'static str)> {
    PROJECTIONS.iter().map(|&p| (p, error)).collect()
}

fn in_order_projections(error: &'static str) -> Vec<(&'static str, &'static str)> {
    ORDER_PROJECTIONS.iter().map(|&p| (p, error)).collect()
}

/// One record of each kind that cannot be applied; `kind` picks which.
fn malformed(kind: usize) -> Malformed {
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let mut json = placed_json(order_id);
    match kind % 6 {
        0 => Malformed {
            what: "bad JSON",
            headers: Some(headers(order_id, ORDER_PLACED_V2, &[])),
            payload: br#"{"order_id": "not even", "name": "#.to_vec(),
            dead_in: everywhere("could not be decoded"),
            key,
        },
        1 => {
            // A NUL in a string: the domain may refuse it when decoding; if it does not,
            // PostgreSQL refuses it in text and jsonb columns. A dead letter either way.
            json["name"] = serde_json::json!("nul\u{0}name");
            let payload = serde_json::to_vec(&json).unwrap();
            assert!(String::from_utf8_lossy(&payload).contains("\\u0000"));
            let dead_in = if domain::Event::decode(ORDER_PLACED_V2, &payload).is_ok() {
                in_order_projections("SQLSTATE 22")
            } else {
                everywhere("could not be decoded")
            };
            Malformed {
                what: "a NUL in a string",
                headers: Some(headers(order_id, ORDER_PLACED_V2, &[])),
                payload,
                dead_in,
                key,
            }
        }
        2 => Malformed {
            what: "an unknown ce_type",
            headers: Some(headers(order_id, "orderstream.order.teleported.v1", &[])),
            payload: serde_json::to_vec(&json).unwrap(),
            dead_in: everywhere("unknown message type `orderstream.order.teleported.v1`"),
            key,
        },
        3 => Malformed {
            what: "no ce_correlationid",
            headers: Some(headers(order_id, ORDER_PLACED_V2, &["ce_correlationid"])),
            payload: serde_json::to_vec(&json).unwrap(),
            dead_in: everywhere("no `ce_correlationid` header"),
            key,
        },
        4 => Malformed {
            what: "no headers",
            headers: None,
            payload: serde_json::to_vec(&json).unwrap(),
            dead_in: everywhere("no `ce_type` header"),
            key,
        },
        _ => {
            // A time the domain takes but PostgreSQL cannot store (before 4713 BC).
            json["placed_at"] = serde_json::json!("-5000-01-01T00:00:00Z");
            let payload = serde_json::to_vec(&json).unwrap();
            assert!(
                domain::Event::decode(ORDER_PLACED_V2, &payload).is_ok(),
                "the domain must accept this event for PostgreSQL to be the one refusing it"
            );
            Malformed {
                what: "a time PostgreSQL refuses",
                headers: Some(headers(order_id, ORDER_PLACED_V2, &[])),
                payload,
                dead_in: in_order_projections("timestamp out of range (SQLSTATE 22008)"),
                key,
            }
        }
    }
}

/// Writes `records` to the events topic and returns where each landed.
async fn write_malformed(isolation: &Isolation, records: Vec<Malformed>) -> Vec<Landed> {
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let mut landed = Vec::new();
    for record in records {
        let mut kafka_record = FutureRecord::to(&isolation.topics.events)
            .key(&record.key)
            .payload(&record.payload);
        if let Some(headers) = record.headers {
            kafka_record = kafka_record.headers(headers);
        }
        let delivery = producer
            .send(kafka_record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("written");
        landed.push(Landed {
            what: record.what,
            partition: delivery.partition,
            offset: delivery.offset,
            dead_in: record.dead_in,
        });
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    landed
}

/// Writes an `OrderPlaced` named `name` the way the command side does.
async fn write_order_named(isolation: &Isolation, name: &str) {
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let placed_at = "2025-01-19T15:04:05Z".parse().unwrap();
    let envelope = placed_envelope(order_placed(name, placed_at));
    produce(&producer, &isolation.topics.events, [envelope]).await;
}

/// Waits until every projection's checkpoint has passed every record on the log.
async fn wait_caught_up(isolation: &Isolation, pool: &PgPool) {
    let written = isolation.records_written(&isolation.topics.events);
    wait_until(
        "every projection to pass the whole log",
        Duration::from_secs(120),
        || async {
            for projection in PROJECTIONS {
                if applied(pool, projection).await < written {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for projection in PROJECTIONS {
        assert_eq!(
            applied(pool, projection).await,
            written,
            "{projection} checkpoint ran past the log"
        );
    }
}

/// A stored dead letter: projection, partition, offset, and its error.
type Stored = BTreeMap<(String, i32, i64), String>;

async fn stored(pool: &PgPool) -> Stored {
    let rows: Vec<(String, i32, i64, String)> =
        sqlx::query_as("SELECT projection, partition, \"offset\", error FROM dead_letters")
            .fetch_all(pool)
            .await
            .expect("dead letters");
    rows.into_iter()
        .map(|(p, partition, offset, error)| ((p, partition, offset), error))
        .collect()
}

/// Checks the stored dead letters are exactly those `landed` calls for, with their errors.
fn assert_dead_letters(stored: &Stored, landed: &[Landed]) {
    let mut expected = BTreeSet::new();
    for record in landed {
        for (projection, error) in &record.dead_in {
            let at = (projection.to_string(), record.partition, record.offset);
            let found = stored
                .get(&at)
                .unwrap_or_else(|| panic!("{} is no dead letter of {projection}: {stored:#?}", record.what));
            assert!(
                found.contains(error),
                "{} in {projection}: error `{found}` does not say `{error}`",
                record.what
            );
            expected.insert(at);
        }
    }
    let extra: Vec<_> = stored.keys().filter(|at| !expected.contains(*at)).collect();
    assert!(extra.is_empty(), "unexpected dead letters: {extra:?}");
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("row count")
}

/// Good orders, then one malformed record of every kind, then more good orders.
async fn write_mixed_log(isolation: &Isolation) -> (BTreeMap<String, Expected>, i64, Vec<Landed>) {
    let mut expected = write_orders(isolation, 300, 17).await;
    let landed = write_malformed(isolation, (0..6).map(malformed).collect()).await;
    merge(&mut expected, write_orders(isolation, 300, 17).await);
    (expected, 600, landed)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_become_dead_letters_and_every_projection_keeps_going() {
    let (isolation, pool) = prepared().await;
    let (expected, orders, landed) = write_mixed_log(&isolation).await;
    let port = free_port();
    let projector = start_projector(&isolation, port, 5000);
    wait_caught_up(&isolation, &pool).await;

    assert_eq!(track_users(&pool).await, expected, "every good order counted once");
    assert_eq!(count(&pool, "order_status").await, orders);
    assert_eq!(count(&pool, "order_history").await, orders);
    let dead = stored(&pool).await;
    assert_dead_letters(&dead, &landed);

    let metrics = metrics(port);
    for projection in PROJECTIONS {
        let n = dead.keys().filter(|(p, _, _)| p == projection).count();
        let sample = format!("orderstream_projection_dead_letters_total{{projection=\"{projection}\"}} {n}");
        assert!(metrics.contains(&sample), "no `{sample}` in:\n{metrics}");
    }

    let status = stdout(&projectors(&isolation, &["status"]).await);
    for projection in PROJECTIONS {
        let n = dead.keys().filter(|(p, _, _)| p == projection).count();
        assert!(
            status.contains(&format!("{projection}: lag 0, dead letters {n}")),
            "{status}"
        );
    }
    let listed = projectors(&isolation, &["dead-letters", "list"]).await;
    assert!(listed.status.success());
    let listed = stdout(&listed);
    assert!(listed.starts_with(&format!("{} dead letters", dead.len())), "{listed}");
    for (projection, partition, offset) in dead.keys() {
        assert!(
            listed.contains(&format!("{projection}  partition {partition} offset {offset}")),
            "{listed}"
        );
    }
    let only = stdout(&projectors(&isolation, &["dead-letters", "list", "--projection", "purchases"]).await);
    let purchases = dead.keys().filter(|(p, _, _)| p == "purchases").count();
    assert!(only.starts_with(&format!("{purchases} dead letters")), "{only}");
    assert!(!only.contains("track_user"), "{only}");

    // A restart reads on from the checkpoints: nothing is applied or set aside again.
    projector.kill();
    let mut expected = expected;
    merge(&mut expected, write_orders(&isolation, 50, 17).await);
    let _projector = start_projector(&isolation, free_port(), 5000);
    wait_caught_up(&isolation, &pool).await;
    assert_eq!(track_users(&pool).await, expected);
    assert_eq!(count(&pool, "order_status").await, orders + 50);
    assert_eq!(stored(&pool).await, dead, "dead letters unchanged by the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_killed_mid_stream_neither_applies_nor_sets_aside_anything_twice() {
    let (isolation, pool) = prepared().await;
    let mut expected = BTreeMap::new();
    let mut landed = Vec::new();
    for round in 0..24 {
        merge(&mut expected, write_orders(&isolation, 250, 37).await);
        landed.extend(write_malformed(&isolation, vec![malformed(round)]).await);
    }
    let total = isolation.records_written(&isolation.topics.events);

    // Small batches make many transactions, so kills land between and inside them, and most
    // batches hold a bad record among good ones.
    let mut kills_mid_stream = 0;
    let mut seen = 0;
    for _ in 0..3 {
        let projector = start_projector(&isolation, free_port(), 50);
        seen = wait_until("track_user to make progress", Duration::from_secs(60), || async {
            let done = applied(&pool, "track_user").await;
            (done > seen).then_some(done)
        })
        .await;
        projector.kill();
        if seen < total {
            kills_mid_stream += 1;
        }
    }
    assert!(kills_mid_stream > 0, "every kill came after the projector had finished");

    let _projector = start_projector(&isolation, free_port(), 50);
    wait_caught_up(&isolation, &pool).await;
    assert_eq!(
        track_users(&pool).await,
        expected,
        "no order counted twice, none skipped"
    );
    assert_eq!(count(&pool, "order_status").await, 24 * 250);
    assert_dead_letters(&stored(&pool).await, &landed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_over_bad_records_completes_and_keeps_their_dead_letters() {
    let (isolation, pool) = prepared().await;
    let (expected, orders, landed) = write_mixed_log(&isolation).await;
    let _live = start_projector(&isolation, free_port(), 100);
    wait_caught_up(&isolation, &pool).await;
    let live_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM dead_letters ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();

    let out = succeeded(&projectors(&isolation, &["rebuild", "--all"]).await);
    for projection in PROJECTIONS {
        assert!(out.contains(&format!("{projection}: swapped in")), "{out}");
    }
    assert!(out.contains("track_user: 6 dead letters"), "{out}");

    // The rebuilt projections' own dead letters replaced the live ones.
    let rebuilt_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM dead_letters ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rebuilt_ids.len(), live_ids.len());
    assert!(
        rebuilt_ids.iter().all(|id| !live_ids.contains(id)),
        "dead letters not replaced"
    );
    assert_dead_letters(&stored(&pool).await, &landed);
    wait_caught_up(&isolation, &pool).await;
    assert_eq!(track_users(&pool).await, expected);
    assert_eq!(count(&pool, "order_status").await, orders);
    assert_eq!(count(&pool, "order_history").await, orders);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_applies_on_retry_once_its_cause_is_fixed() {
    let (isolation, pool) = prepared().await;
    // A rule of the read model, dropped later: the fix.
    sqlx::query("ALTER TABLE track_user ADD CONSTRAINT not_yet CHECK (name <> 'Refused For Now')")
        .execute(&pool)
        .await
        .unwrap();
    let mut expected = write_orders(&isolation, 20, 3).await;
    write_order_named(&isolation, "Refused For Now").await;
    write_malformed(&isolation, vec![malformed(0)]).await;
    let _projector = start_projector(&isolation, free_port(), 100);
    wait_caught_up(&isolation, &pool).await;
    assert_eq!(track_users(&pool).await, expected);

    let id_of = |error: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM dead_letters WHERE projection = 'track_user' AND error LIKE '%' || $1 || '%'",
            )
            .bind(error)
            .fetch_one(&pool)
            .await
            .expect("dead letter")
        }
    };
    let refused = id_of("SQLSTATE 23514").await;
    let undecodable = id_of("could not be decoded").await;
    let retry = |id: i64| {
        let isolation = isolation.clone();
        async move { projectors(&isolation, &["dead-letters", "retry", &id.to_string()]).await }
    };

    let output = retry(undecodable).await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("dead letter {undecodable} still cannot be decoded"))
    );
    let output = retry(refused).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("still refused by PostgreSQL"));
    // The refused order in `track_user`, the undecodable record in every projection.
    assert_eq!(
        stored(&pool).await.len(),
        1 + PROJECTIONS.len(),
        "both stay dead letters"
    );

    sqlx::query("ALTER TABLE track_user DROP CONSTRAINT not_yet")
        .execute(&pool)
        .await
        .unwrap();
    let output = succeeded(&retry(refused).await);
    assert!(output.contains(&format!("dead letter {refused} applied to track_user and removed")));
    expected.insert(
        "Refused For Now".to_owned(),
        Expected {
            counter: 1,
            created_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        },
    );
    assert_eq!(track_users(&pool).await, expected);
    assert_eq!(stored(&pool).await.len(), PROJECTIONS.len());
    let output = retry(refused).await;
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("no dead letter with id {refused}")));
}
