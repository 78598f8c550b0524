//! The decider's restore benchmark, against the real broker: how long a restore takes and how
//! much resident memory it needs after `BENCH_RESTORE_EVENTS` events (default 1000000), before
//! and after the local store and state changelog.
//!
//! `cargo bench -p command-api --bench restore` (or `deploy/local/bench-restore`):
//! 1. writes that many `OrderPlaced` events (one order each) to a fresh events topic;
//! 2. starts a decider on them: with no changelog yet it folds the events log into its store and
//!    seeds the changelog (the one-time upgrade path), timed until `/ready`;
//! 3. then measures, each in a process of its own so that its memory is its own:
//!    - `fold`: the restore as it was before the store, folding the whole events log into a
//!      map of every aggregate in memory;
//!    - `changelog`: a fresh replica, empty store, reading the compacted changelog;
//!    - `restart`: the same replica again, its store up to date.
//!
//! Resident memory is the process's peak (`VmHWM` from `/proc/self/status`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use command_api::decider::{self, DeciderMetrics, DeciderSettings};
use command_api::{Application, Config};
use domain::{Aggregates, Decider as _, Event, Message as _, State};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, Topics};
use service_kit::metrics::Registry;
use service_kit::server::App;
use service_kit::stream::Batching;
use service_kit::testing::{order_placed, placed_envelope, produce, succeeded, wait_until, Isolation};

const PARTITIONS: i32 = 12;
const PHASE: &str = "BENCH_RESTORE_PHASE";
const PREFIX: &str = "BENCH_RESTORE_PREFIX";
const STATE_DIR: &str = "BENCH_RESTORE_STATE_DIR";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(PHASE) {
        Ok(phase) => runtime.block_on(measure(&phase)),
        Err(_) => runtime.block_on(prepare_and_compare()),
    }
}

fn isolation() -> Isolation {
    let mut isolation = Isolation::new();
    isolation.kafka.partitions = PARTITIONS;
    if let Ok(prefix) = std::env::var(PREFIX) {
        isolation.kafka.topic_prefix = prefix.clone();
        isolation.topics = Topics::new(&prefix);
    }
    isolation
}

async fn prepare_and_compare() {
    let events: usize = std::env::var("BENCH_RESTORE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let isolation = isolation();
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    println!("restore benchmark: {events} events on {PARTITIONS} partitions");

    let started = Instant::now();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &isolation.kafka.kafka_brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let now = Utc::now();
    for chunk_start in (0..events).step_by(100_000) {
        let chunk =
            (chunk_start..events.min(chunk_start + 100_000)).map(|_| placed_envelope(order_placed("Bench", now)));
        produce(&producer, &isolation.topics.events, chunk).await;
    }
    println!("  wrote the events log in {:.1} s", started.elapsed().as_secs_f64());

    // The upgrade path: a decider finds no changelog, folds the log and seeds the changelog.
    let state_dir = isolation.decider_state_dir().join("upgrade");
    let state_dir_text = state_dir.display().to_string();
    let config: Config = isolation.settings(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("DECIDER_STATE_DIR", state_dir_text.as_str()),
        ("PAYMENT_REACTOR", "false"),
    ]);
    let app = Application::build(config).await.expect("command-api builds");
    let ready_url = format!("http://127.0.0.1:{}/ready", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    wait_until("the decider to fold and seed", Duration::from_secs(3600), || async {
        let response = client.get(&ready_url).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    println!(
        "  upgrade: fold into the store and seed the changelog: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = stop.send(());
    running.await.expect("app task").expect("app ran");

    let replica_dir = isolation.decider_state_dir().join("replica");
    for phase in ["fold", "changelog", "restart"] {
        let output = std::process::Command::new(std::env::current_exe().expect("this benchmark"))
            .env(PHASE, phase)
            .env(PREFIX, &isolation.kafka.topic_prefix)
            .env(STATE_DIR, &replica_dir)
            .output()
            .expect("phase runs");
        print!("{}", succeeded(phase, &output));
    }
    let _ = std::fs::remove_dir_all(isolation.decider_state_dir());
}

async fn measure(phase: &str) {
    let isolation = isolation();
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let started = Instant::now();
    let what = match phase {
        "fold" => {
            let aggregates = fold_in_memory(&isolation, &partitions).await;
            format!("before: fold of the events log in memory ({aggregates} aggregates)")
        }
        _ => {
            let settings = DeciderSettings {
                kafka: isolation.kafka.clone(),
                topics: isolation.topics.clone(),
                instance_id: "bench".to_owned(),
                batching: Batching::new(1000, Duration::from_millis(5)),
                state_dir: PathBuf::from(std::env::var(STATE_DIR).expect("state dir")),
                rebuild_state: false,
                outcome_partitions: isolation.kafka.outcome_partitions,
            };
            let metrics = DeciderMetrics::register(&Registry::default());
            let read = decider::restore_for_benchmark(&settings, &metrics, &partitions)
                .await
                .expect("restore");
            let label = if phase == "changelog" {
                "after: fresh replica, empty store, from the changelog"
            } else {
                "after: restart, store up to date"
            };
            format!(
                "{label} ({} changelog records, {} events, {} verdicts read)",
                read.changelog, read.events, read.verdicts
            )
        }
    };
    let elapsed = started.elapsed();
    println!(
        "  {what}: {:.2} s, peak resident memory {} MB",
        elapsed.as_secs_f64(),
        peak_resident_kb() / 1024
    );
}

/// The restore as it was before the store: every event of every partition decoded and folded
/// into one in-memory map of all aggregates.
async fn fold_in_memory(isolation: &Isolation, partitions: &[i32]) -> usize {
    let consumer: StreamConsumer = isolation
        .kafka
        .consumer_config("bench-restore-fold")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for &partition in partitions {
        assignment
            .add_partition_offset(&isolation.topics.events, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut states: HashMap<uuid::Uuid, (State, u64)> = HashMap::new();
    let mut unfinished = partitions.len();
    while unfinished > 0 {
        match consumer.recv().await {
            Ok(record) => {
                let envelope = Envelope::<Event>::from_kafka(&record).expect("bench events decode");
                let entry = states.entry(envelope.message.aggregate_id()).or_default();
                entry.1 = envelope.sequence.unwrap_or(entry.1 + 1);
                entry.0 = Aggregates::evolve(std::mem::take(&mut entry.0), &envelope.message);
            }
            Err(KafkaError::PartitionEOF(_)) => unfinished -= 1,
            Err(err) => panic!("reading events: {err}"),
        }
    }
    states.len()
}

/// The peak resident set size of this process, in kB.
fn peak_resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default()
}
