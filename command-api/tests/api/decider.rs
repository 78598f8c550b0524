//! The decider as a replica among others: restores bounded by its store and the state
//! changelog, partitions shared by two replicas, crashes mid-load, duplicate instance ids,
//! SIGTERM, and a transaction a previous owner left open.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::{self, StreamExt as _};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use service_kit::testing::{free_port, order_placed, placed_envelope, produce, wait_until, ChildService, Isolation};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, authorized_client, committed_records, config, header, metric, produce_raw, spawn_app_with,
    RawRecord, READY_WITHIN,
};
use crate::restart::{start_logged, start_with, wait_ready};

/// A state directory no decider has used yet: a fresh replica's empty volume.
fn empty_state_dir(isolation: &Isolation) -> (&'static str, String) {
    let dir: PathBuf = isolation.decider_state_dir().join(Uuid::new_v4().to_string());
    ("DECIDER_STATE_DIR", dir.display().to_string())
}

/// A command-api on a port of its own, which processes start on, and are stopped and started
/// again on, and its HTTP client.
#[derive(Clone)]
pub(crate) struct Replica {
    pub(crate) port: u16,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

impl Replica {
    pub(crate) fn new() -> Self {
        let port = free_port();
        Self {
            port,
            base: format!("http://127.0.0.1:{port}"),
            client: authorized_client(),
        }
    }

    /// Starts its process in `isolation` with `extra` settings and waits until it is ready.
    pub(crate) async fn start(&self, isolation: &Isolation, extra: &[(&'static str, String)]) -> ChildService {
        let process = start_with(isolation, self.port, extra);
        self.ready().await;
        process
    }

    pub(crate) async fn ready(&self) {
        wait_ready(&self.client, &self.base).await;
    }

    pub(crate) async fn place(&self, body: &Value, key: Option<&str>) -> reqwest::Response {
        self.post("/api/v1/orders", Some(body), key).await
    }

    /// POSTs `body`, if any, to `path` under Idempotency-Key `key`, if any.
    pub(crate) async fn post(&self, path: &str, body: Option<&Value>, key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("command-api answers")
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    async fn metric(&self, name: &str) -> u64 {
        metric(&self.client, &self.base, name).await
    }

    async fn restored(&self) -> (u64, u64) {
        (
            self.metric("orderstream_decider_restored_changelog_records_total")
                .await,
            self.metric("orderstream_decider_restored_events_total").await,
        )
    }
}

/// Stops `replica` with SIGTERM and checks it exits cleanly within 10 s.
async fn stop_cleanly(mut replica: ChildService) {
    replica.terminate();
    assert!(replica.exited_within(Duration::from_secs(10)).await.success());
}

/// A new replica of `isolation` with an empty volume, once ready, with what its restore read:
/// changelog records and events.
async fn fresh_replica(isolation: &Isolation) -> (Replica, ChildService, (u64, u64)) {
    let replica = Replica::new();
    let process = replica.start(isolation, &[empty_state_dir(isolation)]).await;
    let restored = replica.restored().await;
    (replica, process, restored)
}

/// Places an order under each key, asserting each is placed, and returns the answers.
async fn place_keyed(replica: &Replica, keys: &[String]) -> HashMap<String, Value> {
    let mut answers = HashMap::new();
    for key in keys {
        let response = replica.place(&json!({"name": "Replica"}), Some(key)).await;
        assert_eq!(response.status(), 201, "{key}");
        answers.insert(key.clone(), response.json().await.unwrap());
    }
    answers
}

/// Places the orders of `answers` again under their keys and asserts each gets its first answer.
async fn assert_first_answers(replica: &Replica, answers: &HashMap<String, Value>) {
    let keys: Vec<String> = answers.keys().cloned().collect();
    let again = place_keyed(replica, &keys).await;
    for (key, first) in answers {
        assert_eq!(&again[key], first, "{key} keeps its first answer");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_decider_reads_only_the_changelog_tail_and_a_fresh_one_restores_from_the_changelog() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let first = replica.start(&isolation, &[]).await;
    let keys: Vec<String> = (0..30).map(|i| format!("restore-{i}")).collect();
    let answers = place_keyed(&replica, &keys).await;
    let order_id = Uuid::new_v4();
    let placed = replica
        .place(&json!({"name": "Once", "order_id": order_id}), None)
        .await;
    assert_eq!(placed.status(), 201);
    stop_cleanly(first).await;

    // The same replica again: its store already holds everything.
    let again = replica.start(&isolation, &[]).await;
    assert_eq!(
        replica.restored().await,
        (0, 0),
        "nothing to read: the store was up to date"
    );
    assert_first_answers(&replica, &answers).await;
    let twice = replica
        .place(&json!({"name": "Once", "order_id": order_id}), None)
        .await;
    assert_problem(twice, 409, None).await;
    stop_cleanly(again).await;

    // A new replica with an empty volume: one changelog record per aggregate, no event.
    let (fresh, _fresh, (changelog, events)) = fresh_replica(&isolation).await;
    assert_eq!(events, 0, "a complete changelog spares the events log");
    assert!(
        changelog >= 31,
        "every aggregate comes from the changelog ({changelog} records)"
    );
    assert_first_answers(&fresh, &answers).await;
    let thrice = fresh.place(&json!({"name": "Once", "order_id": order_id}), None).await;
    assert_problem(thrice, 409, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_from_before_the_changelog_is_folded_once_and_its_quarantine_travels_with_the_changelog() {
    let isolation = Isolation::new();
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &isolation.kafka.kafka_brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let placed: Vec<_> = (0..20).map(|_| order_placed("Old order", Utc::now())).collect();
    let old_ids: Vec<Uuid> = placed.iter().map(|p| p.order_id).collect();
    produce(
        &producer,
        &isolation.topics.events,
        placed.into_iter().map(placed_envelope),
    )
    .await;
    let broken = Uuid::new_v4();
    let broken_key = broken.to_string();
    produce_raw(
        &isolation,
        &isolation.topics.events,
        vec![RawRecord {
            partition: None,
            key: Some(&broken_key),
            headers: vec![("ce_type", "orderstream.order.placed.v3".to_owned())],
            payload: b"{not json".to_vec(),
        }],
    )
    .await;

    let replica = Replica::new();
    let first = replica.start(&isolation, &[]).await;
    let (_, events) = replica.restored().await;
    assert_eq!(events, 21, "the log without a changelog is folded");
    let check = |replica: &'static str, at: &Replica| {
        let (old_ids, at) = (old_ids.clone(), at.clone());
        async move {
            for id in old_ids {
                let again = at.place(&json!({"name": "Old order", "order_id": id}), None).await;
                assert_eq!(again.status(), 409, "{replica}: {id} was placed before");
            }
            let cancel_path = format!("/api/v1/orders/{broken}/cancel");
            let cancel = at.post(&cancel_path, Some(&json!({"reason": "broken"})), None).await;
            let problem = assert_problem(cancel, 409, None).await;
            assert_eq!(problem["type"], "/problems/aggregate-quarantined", "{replica}");
        }
    };
    check("folding replica", &replica).await;
    stop_cleanly(first).await;

    let (fresh, _fresh, (changelog, events)) = fresh_replica(&isolation).await;
    assert_eq!(events, 0, "the changelog was seeded: the events log is not read again");
    assert!(changelog >= 21, "{changelog} changelog records");
    check("fresh replica", &fresh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decider_killed_mid_load_loses_nothing_and_decides_nothing_twice() {
    let isolation = Isolation::new();
    let replica = Arc::new(Replica::new());
    let service = replica.start(&isolation, &[]).await;
    let keys: Vec<String> = (0..300).map(|i| format!("load-{i}")).collect();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (replica, keys, answered) = (replica.clone(), keys.clone(), answered.clone());
        tokio::spawn(async move {
            stream::iter(keys)
                .map(|key| {
                    let (replica, answered) = (replica.clone(), answered.clone());
                    async move {
                        let mut request = replica
                            .client
                            .post(format!("{}/api/v1/orders", replica.base))
                            .json(&json!({"name": "Load"}))
                            .header("Idempotency-Key", &key);
                        request = request.timeout(Duration::from_secs(20));
                        let answer = match request.send().await {
                            Ok(response) if response.status() == 201 => response.json::<Value>().await.ok(),
                            _ => None,
                        };
                        answered.fetch_add(1, Ordering::Relaxed);
                        (key, answer)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        })
    };
    wait_until("a third of the load answered", Duration::from_secs(60), || async {
        (answered.load(Ordering::Relaxed) >= 100).then_some(())
    })
    .await;
    service.kill();
    let before_kill: HashMap<String, Value> = load
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(key, answer)| Some((key, answer?)))
        .collect();
    assert!(
        before_kill.len() >= 100,
        "{} answered before the kill",
        before_kill.len()
    );

    let _service = replica.start(&isolation, &[]).await;
    let mut order_ids = Vec::new();
    for key in &keys {
        let retry = replica.place(&json!({"name": "Load"}), Some(key)).await;
        assert_eq!(retry.status(), 201, "{key}");
        let answer: Value = retry.json().await.unwrap();
        if let Some(first) = before_kill.get(key) {
            assert_eq!(&answer, first, "{key}: an acknowledged verdict survives the crash");
        }
        order_ids.push(answer["order_id"].as_str().unwrap().to_owned());
    }

    let placed = committed_records(&isolation, &isolation.topics.events).await;
    let mut per_order: HashMap<&str, usize> = HashMap::new();
    for event in &placed {
        if header(event, "ce_type").is_some_and(|t| t.starts_with("orderstream.order.placed")) {
            *per_order.entry(header(event, "ce_subject").unwrap()).or_default() += 1;
        }
    }
    assert_eq!(per_order.len(), keys.len(), "every command decided");
    for id in &order_ids {
        assert_eq!(per_order.get(id.as_str()), Some(&1), "{id} placed exactly once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_deciders_share_the_partitions_and_the_first_keeps_deciding_while_the_second_joins() {
    let isolation = Isolation::new();
    let first = spawn_app_with(isolation.clone(), config(&isolation)).await;
    first.wait_ready().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, base, stop) = (first.client.clone(), first.address.clone(), stop.clone());
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut placed = 0u32;
            while !stop.load(Ordering::Acquire) {
                let started = Instant::now();
                let response = client
                    .post(format!("{base}/api/v1/orders"))
                    .json(&json!({"name": "During the join"}))
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(response.status(), 201, "every order is decided during the join");
                slowest = slowest.max(started.elapsed());
                placed += 1;
            }
            (placed, slowest)
        })
    };

    let second = spawn_app_with(isolation.clone(), config(&isolation)).await;
    second.wait_ready().await;
    let owned = |base: String| {
        let client = first.client.clone();
        async move { metric(&client, &base, "orderstream_decider_partitions_owned").await }
    };
    wait_until("the partitions to be split", Duration::from_secs(60), || async {
        let (a, b) = (owned(first.address.clone()).await, owned(second.address.clone()).await);
        (a > 0 && b > 0 && a + b == service_kit::testing::TEST_PARTITIONS as u64).then_some(())
    })
    .await;
    stop.store(true, Ordering::Release);
    let (placed, slowest) = load.await.unwrap();
    assert!(placed > 0, "orders were placed during the join");
    assert!(
        slowest < Duration::from_secs(5),
        "no order waited for the whole group to settle ({slowest:?})"
    );
    // Orders sent through the first replica's edge are now decided by the second too.
    wait_until("the second replica to decide", Duration::from_secs(30), || async {
        assert_eq!(
            first.place(&json!({"name": "After the join"}), None).await.status(),
            201
        );
        let decided = metric(&second.client, &second.address, "orderstream_decider_commands_total").await;
        (decided > 0).then_some(())
    })
    .await;
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_decider_claiming_a_live_replicas_instance_id_is_refused() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let id = ("DECIDER_INSTANCE_ID", "twin".to_owned());
    let _first = replica.start(&isolation, std::slice::from_ref(&id)).await;

    let log = isolation.temp_file("twin.log");
    let mut twin = start_logged(&isolation, free_port(), &[id, empty_state_dir(&isolation)], &log);
    let status = twin.exited_within(Duration::from_secs(45)).await;
    assert!(!status.success(), "the twin exits with an error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("DECIDER_INSTANCE_ID"),
        "the error says what to change: {text}"
    );
    let _ = std::fs::remove_file(&log);

    let placed = replica.place(&json!({"name": "Still deciding"}), None).await;
    assert_eq!(placed.status(), 201, "the first replica was not fenced");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_replica_within_ten_seconds_and_the_other_takes_its_partitions_at_once() {
    let isolation = Isolation::new();
    let (first, second) = (Replica::new(), Replica::new());
    let mut leaving = first.start(&isolation, &[]).await;
    let _staying = second.start(&isolation, &[]).await;
    wait_until("the partitions to be split", Duration::from_secs(60), || async {
        let (a, b) = (
            first.metric("orderstream_decider_partitions_owned").await,
            second.metric("orderstream_decider_partitions_owned").await,
        );
        (a > 0 && b > 0).then_some(())
    })
    .await;

    let terminated = Instant::now();
    leaving.terminate();
    let status = leaving.exited_within(Duration::from_secs(10)).await;
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(terminated.elapsed() < Duration::from_secs(10));
    // Orders on every partition: the leaver's are decided long before its session would have
    // timed out (10 s), because it left the group.
    let mut partitions = std::collections::HashSet::new();
    while partitions.len() < service_kit::testing::TEST_PARTITIONS as usize {
        let placed = second.place(&json!({"name": "Taken over"}), None).await;
        assert_eq!(placed.status(), 201);
        let body: Value = placed.json().await.unwrap();
        partitions.insert(body["events"][0]["partition"].as_i64().unwrap());
    }
    assert!(
        terminated.elapsed() < Duration::from_secs(9),
        "the partitions moved at once ({:?})",
        terminated.elapsed()
    );
}

/// A transaction a previous owner of a partition left open on the state changelog may still
/// commit (the group took the partition away while that replica could not be reached, after its
/// offsets were sent): the next owner's restore waits for it to end, and takes in what it wrote.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_waits_for_a_transaction_left_open_on_the_changelog_and_takes_in_what_it_commits() {
    use rdkafka::producer::{FutureRecord, Producer as _};

    let isolation = Isolation::new();
    // A first replica seeds the changelog of every partition, then leaves.
    let (_, seeder, _) = fresh_replica(&isolation).await;
    stop_cleanly(seeder).await;

    // What the previous owner wrote in its last transaction: an aggregate whose state record
    // does not decode, so the next owner quarantines it if, and only if, it reads the record.
    let aggregate = Uuid::new_v4();
    let key = aggregate.to_string();
    let previous_owner: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &isolation.kafka.kafka_brokers)
        .set("partitioner", "murmur2_random")
        .set("transactional.id", format!("{}-previous-owner", isolation.id))
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("transactional producer");
    previous_owner.init_transactions(Duration::from_secs(30)).expect("init");
    previous_owner.begin_transaction().expect("begin");
    previous_owner
        .send(
            FutureRecord::to(&isolation.topics.decider_state)
                .key(&key)
                .payload(b"{not a state".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .expect("state record written");

    let replica = Replica::new();
    let log = isolation.temp_file("waiting.log");
    let _next_owner = start_logged(&isolation, replica.port, &[empty_state_dir(&isolation)], &log);
    wait_until("the restore to wait for the open transaction", READY_WITHIN, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("waiting for a transaction open on the partition to end")
            .then_some(())
    })
    .await;
    let ready = replica.get("/ready").await;
    assert_eq!(ready.status(), 503, "not ready while a partition waits");

    previous_owner
        .commit_transaction(Duration::from_secs(30))
        .expect("commit");
    replica.ready().await;
    let cancel = replica
        .post(
            &format!("/api/v1/orders/{aggregate}/cancel"),
            Some(&json!({"reason": "late"})),
            None,
        )
        .await;
    let problem = assert_problem(cancel, 409, None).await;
    assert_eq!(
        problem["type"], "/problems/aggregate-quarantined",
        "the record committed after the restore began was read"
    );
    let _ = std::fs::remove_file(&log);
}
