//! Several `projectors run` processes share each projection's partitions: every event is folded
//! exactly once, a killed process's partitions move to the survivor, a process that lost a
//! partition cannot write it any more (the checkpoint row is the fence), and a partition is
//! folded from its checkpoint row whatever offset the group committed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use projectors::db;
use projectors::projection::Projection;
use projectors::runner::{self, Batch, RunnerError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};
use service_kit::kafka::config::SESSION_TIMEOUT;
use service_kit::testing::{free_port, wait_until, ChildService, Isolation, TEST_PARTITIONS};
use sqlx::PgPool;

use crate::helpers::{applied, merge, metrics, prepared, start_projector_logged, track_users, write_orders, Expected};

const PROJECTIONS: [&str; 5] = ["track_user", "order_status", "order_history", "purchases", "products"];
/// The projections that read `OrderPlaced`, and so count every event written here.
const ORDER_PROJECTIONS: [&str; 3] = ["track_user", "order_status", "order_history"];

/// A projector, the port of its `/metrics` and the file it logs to.
struct Member {
    process: ChildService,
    port: u16,
    log: PathBuf,
}

fn member(isolation: &Isolation) -> Member {
    let port = free_port();
    let log = isolation.temp_file(&format!("projector-{port}.log"));
    // Small batches make many transactions, so a kill lands inside the load.
    let process = start_projector_logged(isolation, port, 50, &log);
    Member { process, port, log }
}

impl Member {
    /// The last lines of its log, for a failure message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The value of `metric` for `projection` on the projector serving `port`, once it answers.
fn metric(port: u16, metric: &str, projection: &str) -> Option<i64> {
    let prefix = format!("{metric}{{projection=\"{projection}\"}} ");
    let body = std::panic::catch_unwind(|| metrics(port)).ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

fn owned(port: u16, projection: &str) -> i64 {
    metric(port, "orderstream_projection_partitions", projection).unwrap_or(0)
}

/// Waits until the partitions of every projection are divided between `members`, each holding
/// some: both have joined every group.
async fn wait_shared(members: &[&Member]) {
    wait_until(
        "every projection's partitions shared",
        Duration::from_secs(60),
        || async {
            let shared = PROJECTIONS.iter().all(|projection| {
                let shares: Vec<i64> = members.iter().map(|m| owned(m.port, projection)).collect();
                shares.iter().all(|&share| share > 0) && shares.iter().sum::<i64>() == i64::from(TEST_PARTITIONS)
            });
            shared.then_some(())
        },
    )
    .await;
}

/// Waits until every order projection has applied `total` events, within `deadline`.
async fn wait_applied(pool: &PgPool, total: i64, deadline: Duration) {
    wait_until(&format!("{total} events in every projection"), deadline, || async {
        let mut done = true;
        for projection in ORDER_PROJECTIONS {
            done &= applied(pool, projection).await >= total;
        }
        done.then_some(())
    })
    .await;
}

/// Rows and checkpoints hold every one of `total` orders exactly once.
async fn assert_exact(pool: &PgPool, expected: &BTreeMap<String, Expected>, total: i64) {
    for projection in ORDER_PROJECTIONS {
        assert_eq!(applied(pool, projection).await, total, "{projection} checkpoint");
    }
    assert_eq!(&track_users(pool).await, expected, "every order counted exactly once");
    for table in ["order_status", "order_history"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(rows, total, "{table} rows");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_projectors_share_the_partitions_and_fold_every_event_once() {
    let (isolation, pool) = prepared().await;
    let (a, b) = (member(&isolation), member(&isolation));
    wait_shared(&[&a, &b]).await;

    let expected = write_orders(&isolation, 10_000, 37).await;
    let total = 10_000;
    wait_applied(&pool, total, Duration::from_secs(120)).await;
    assert_exact(&pool, &expected, total).await;

    // Each process folded its own share, and the shares add up to the log: no event twice.
    for projection in ORDER_PROJECTIONS {
        let folded: Vec<i64> = [&a, &b]
            .iter()
            .map(|m| metric(m.port, "orderstream_projection_events_total", projection).expect("events metric"))
            .collect();
        assert!(
            folded.iter().all(|&n| n > 0),
            "{projection}: one process idle: {folded:?}"
        );
        assert_eq!(folded.iter().sum::<i64>(), total, "{projection}: folded {folded:?}");
    }
    drop((a.process, b.process));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_killed_mid_load_hands_its_partitions_to_the_survivor() {
    let (isolation, pool) = prepared().await;
    let (doomed, survivor) = (member(&isolation), member(&isolation));
    wait_shared(&[&doomed, &survivor]).await;

    let mut expected = write_orders(&isolation, 20_000, 37).await;
    // The whole test binary's processes share two cores: the first batches can take a while.
    let give_up = Instant::now() + Duration::from_secs(120);
    while metric(doomed.port, "orderstream_projection_events_total", "track_user").unwrap_or(0) <= 500 {
        assert!(
            Instant::now() < give_up,
            "the doomed projector folded no 500 events within 120 s; its log ends:\n{}",
            doomed.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_kill = applied(&pool, "track_user").await;
    doomed.process.kill();
    let killed = Instant::now();
    assert!(at_kill < 20_000, "the kill came after the load was done");

    // Orders written after the kill land on the dead process's partitions too.
    merge(&mut expected, write_orders(&isolation, 2_000, 37).await);
    let total = 22_000;
    let bound = SESSION_TIMEOUT + Duration::from_secs(50);
    wait_applied(&pool, total, bound).await;
    let took = killed.elapsed();
    eprintln!(
        "survivor folded the whole log {:.1}s after the kill",
        took.as_secs_f64()
    );
    for projection in PROJECTIONS {
        assert_eq!(
            owned(survivor.port, projection),
            i64::from(TEST_PARTITIONS),
            "{projection}: the survivor owns every partition"
        );
    }
    assert_exact(&pool, &expected, total).await;
}

/// Every record of the events topic, read without a group.
async fn read_all<'c>(isolation: &Isolation, consumer: &'c StreamConsumer, count: usize) -> Vec<BorrowedMessage<'c>> {
    let mut assignment = TopicPartitionList::new();
    for partition in 0..TEST_PARTITIONS {
        assignment
            .add_partition_offset(&isolation.topics.events, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), service_kit::kafka::recv(consumer))
            .await
            .expect("every record within 30 s")
            .expect("a record");
        messages.push(message);
    }
    messages
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_owners_batch_is_refused_by_the_checkpoint_fence() {
    let (isolation, pool) = prepared().await;
    let expected = write_orders(&isolation, 300, 17).await;
    let consumer: StreamConsumer = isolation.kafka.consumer_config("fence-reader").create().unwrap();
    let mut batch = Batch::default();
    batch.extend(read_all(&isolation, &consumer, 300).await);

    // Both claim every partition: the one that lost them (silent past the session timeout)
    // and the one the group gave them to. The rows exist before either folds anything.
    let partitions: Vec<i32> = (0..TEST_PARTITIONS).collect();
    let mut stale = db::claim(&pool, "track_user", &partitions).await.unwrap();
    let mut owner = db::claim(&pool, "track_user", &partitions).await.unwrap();
    assert_eq!(stale.len(), partitions.len(), "a checkpoint row per partition");

    runner::commit(Projection::TrackUser, &pool, &mut owner, &batch)
        .await
        .expect("the owner's batch");
    let refused = runner::commit(Projection::TrackUser, &pool, &mut stale, &batch).await;
    assert!(
        matches!(refused, Err(RunnerError::CheckpointMoved { .. })),
        "the stale batch was written: {refused:?}"
    );
    assert_eq!(applied(&pool, "track_user").await, 300);
    assert_eq!(track_users(&pool).await, expected, "no order counted twice");

    // Re-seeking from the stored checkpoint, the stale process agrees with the owner again.
    let reclaimed = db::claim(&pool, "track_user", &partitions).await.unwrap();
    assert_eq!(reclaimed, owner);
}

/// The offsets the projectors' group has committed, summed over the partitions.
fn committed(isolation: &Isolation) -> i64 {
    let group = runner::group(&isolation.database.database_schema);
    let reader: StreamConsumer = isolation.kafka.consumer_config(&group).create().unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..TEST_PARTITIONS {
        partitions.add_partition(&isolation.topics.events, partition);
    }
    let committed = reader
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("the group's offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .filter(|&offset| offset > 0)
        .sum()
}

/// `projection` restored from a backup taken before any order, while no projector runs: its
/// table empty and its checkpoints at the start, while the group's offsets and the other
/// projections stay at the head. A projector started then folds it again from its checkpoints,
/// and folds nothing twice into the others.
async fn restored_from_an_empty_backup(projection: &str) {
    let (isolation, pool) = prepared().await;
    let mut expected = write_orders(&isolation, 1_000, 37).await;
    let mut first = member(&isolation);
    wait_applied(&pool, 1_000, Duration::from_secs(60)).await;
    wait_until("the group's offsets at the head", Duration::from_secs(30), || async {
        (committed(&isolation) == 1_000).then_some(())
    })
    .await;
    first.process.terminate();
    first.process.exited_within(Duration::from_secs(30)).await;

    sqlx::query(&format!("TRUNCATE {projection}"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projection_checkpoint SET next_offset = 0 WHERE projection = $1")
        .bind(projection)
        .execute(&pool)
        .await
        .unwrap();
    merge(&mut expected, write_orders(&isolation, 200, 37).await);
    let _second = member(&isolation);
    wait_applied(&pool, 1_200, Duration::from_secs(60)).await;
    assert_exact(&pool, &expected, 1_200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_folds_from_the_checkpoint_rows_not_from_the_groups_offsets() {
    restored_from_an_empty_backup("track_user").await;
}

/// The shared consumer reads from the start again for `order_history` alone, and `track_user`,
/// whose counts would show a second fold, skips what it has folded.
#[tokio::test(flavor = "multi_thread")]
async fn a_projection_rewound_alone_is_folded_again_while_the_others_fold_nothing_twice() {
    restored_from_an_empty_backup("order_history").await;
}
