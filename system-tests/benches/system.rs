//! orderstream's system benchmark, against the real broker and database.
//!
//! Measures, in one run and on one isolated set of topics and schema:
//! - raw limits: rdkafka produce (acks=all, idempotent) and `read_committed` consume of records
//!   shaped like our events, and PostgreSQL `COPY` of rows shaped like `order_status`;
//! - orders/s end to end over HTTP with many requests in flight, and their p50/p99 latency,
//!   with the release binaries of all three services running; then again through two
//!   command-api replicas sharing the decider's partitions, requests alternating between them;
//! - purchases/s end to end: accepted over HTTP, charged by the payment reactor, authorized by
//!   the decider and readable in the `purchases` read model;
//! - orders with three catalog items each: accepted over HTTP (priced from the catalog), and
//!   reserved by the stock reservation saga and readable as `reserved` in `order_status`;
//! - projection events/s on a backlog, per projection;
//! - replay: `projectors rebuild` of each order projection over a log of `BENCH_REPLAY_EVENTS`
//!   (default 1000000) events, against a raw consume of that same topic.
//!
//! Each figure is printed absolute and as a ratio to its raw limit. Sizes come from
//! `BENCH_EVENTS` (backlog and raw records, default 200000), `BENCH_ORDERS` (HTTP orders,
//! default 20000), `BENCH_PURCHASES` (HTTP purchases, default 10000), `BENCH_CATALOG_ORDERS`
//! (HTTP orders with catalog items, default 5000) and `BENCH_IN_FLIGHT` (concurrent requests,
//! default 64).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::order::{OrderNote, OrderPlaced};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use service_kit::auth::{CATALOG_WRITE, PURCHASES_REFUND, PURCHASES_WRITE};
use service_kit::kafka::KafkaArgs;
use service_kit::testing::{
    bearer, bearer_user, example_purchase, free_port, order_placed, placed_envelope, produce, wait_until, ChildService,
    Isolation,
};
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;
use uuid::Uuid;

const PARTITIONS: i32 = 12;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A rate measurement.
struct Rate {
    count: usize,
    elapsed: Duration,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>10.0}/s  ({} in {:.2} s)",
            self.per_second(),
            self.count,
            self.elapsed.as_secs_f64()
        )
    }
}

fn ratio(of: &Rate, to: &Rate) -> String {
    format!("{:.2}", of.per_second() / to.per_second())
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for test names; there are none to list.
    }
    let events = env_usize("BENCH_EVENTS", 200_000);
    let orders = env_usize("BENCH_ORDERS", 20_000);
    let purchases = env_usize("BENCH_PURCHASES", 10_000);
    let catalog_orders = env_usize("BENCH_CATALOG_ORDERS", 5_000);
    let replay_events = env_usize("BENCH_REPLAY_EVENTS", 1_000_000);
    let in_flight = env_usize("BENCH_IN_FLIGHT", 64);
    let mut isolation = Isolation::new();
    isolation.kafka.partitions = PARTITIONS;
    let bin_dir = release_dir();
    println!("orderstream system benchmark: {PARTITIONS} partitions, {events} events, {orders} HTTP orders, {in_flight} in flight");

    println!("\n[1/9] raw Kafka produce (acks=all, idempotent, event-shaped records)");
    let raw_topic = format!("{}bench.raw", isolation.kafka.topic_prefix);
    create_topic(&isolation.kafka, &raw_topic).await;
    let produce = produce_events(&isolation.kafka, &raw_topic, events).await;
    println!("      {produce}");

    println!("[2/9] raw Kafka consume (read_committed)");
    let consume = consume_all(&isolation.kafka, &raw_topic, events).await;
    println!("      {consume}");

    let pool = isolation.database.pool().expect("pool");
    projectors::db::migrate(&pool, &isolation.database.database_schema)
        .await
        .expect("migrate");
    println!("[3/9] raw PostgreSQL COPY (order_status-shaped rows)");
    let copy = copy_rows(&pool, events).await;
    println!("      {copy}");

    println!("[4/9] projection of a backlog of {events} events (both projections at once)");
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    produce_events(&isolation.kafka, &isolation.topics.events, events).await;
    let started = Instant::now();
    let projector = start(&bin_dir, "projectors", &["run"], &isolation, free_port());
    let mut projected = Vec::new();
    for projection in ["track_user", "order_status"] {
        wait_until(
            &format!("{projection} to apply the backlog"),
            Duration::from_secs(900),
            || async {
                let done: i64 = projectors::db::checkpoints(&pool, projection)
                    .await
                    .ok()?
                    .values()
                    .sum();
                (done >= events as i64).then_some(())
            },
        )
        .await;
        projected.push((
            projection,
            Rate {
                count: events,
                elapsed: started.elapsed(),
            },
        ));
    }
    for (projection, rate) in &projected {
        println!("      {projection:<13} {rate}");
    }

    println!("[5/9] orders end to end over HTTP (command-api, projectors and query-api running)");
    let port = free_port();
    let command_api = start(&bin_dir, "command-api", &[], &isolation, port);
    let query_api = start(&bin_dir, "query-api", &[], &isolation, free_port());
    let base = format!("http://127.0.0.1:{port}");
    // Orders come from one user; purchases from the purchase processor, which requests them
    // for its 100 users and so needs the scope that acts for other users.
    let client = authorized_client(&bearer_user(Uuid::from_u128(1)), in_flight);
    let processor = authorized_client(&bearer(&[PURCHASES_WRITE, PURCHASES_REFUND]), in_flight);
    wait_ready(&client, &base).await;
    let orders_run = send_requests(
        &client,
        &[format!("{base}/api/v1/orders")],
        orders,
        in_flight,
        201,
        order_body,
    )
    .await;
    println!("      {orders_run}");

    println!("[6/9] purchases end to end: HTTP, the payment reactor, the decider, the read model");
    let started = Instant::now();
    let purchases_run = send_requests(
        &processor,
        &[format!("{base}/api/v1/purchases")],
        purchases,
        in_flight,
        202,
        purchase_body,
    )
    .await;
    println!("      accepted   {purchases_run}");
    let authorized = counted(
        &pool,
        "every purchase to read back authorized",
        "SELECT count(*) FROM purchases WHERE status = 'authorized'",
        purchases,
        started,
    )
    .await;
    println!("      authorized {authorized}");

    println!("[7/9] orders with 3 catalog items each: priced from the catalog, reserved by the stock saga");
    let staff = authorized_client(&bearer(&[CATALOG_WRITE]), in_flight);
    stock_catalog(&staff, &base).await;
    let started = Instant::now();
    let catalog_run = send_requests(
        &client,
        &[format!("{base}/api/v1/orders")],
        catalog_orders,
        in_flight,
        201,
        catalog_order_body,
    )
    .await;
    println!("      accepted   {catalog_run}");
    let reserved = counted(
        &pool,
        "every catalog order to read back reserved",
        "SELECT count(*) FROM order_status WHERE stock_status = 'reserved'",
        catalog_orders,
        started,
    )
    .await;
    println!("      reserved   {reserved}");

    println!("[8/9] orders end to end over HTTP through two command-api replicas, alternately");
    let second_port = free_port();
    let second = start(&bin_dir, "command-api", &[], &isolation, second_port);
    let second_base = format!("http://127.0.0.1:{second_port}");
    wait_ready(&client, &second_base).await;
    let two_replicas_run = send_requests(
        &client,
        &[format!("{base}/api/v1/orders"), format!("{second_base}/api/v1/orders")],
        orders,
        in_flight,
        201,
        order_body,
    )
    .await;
    println!("      {two_replicas_run}");
    drop((command_api, second, query_api, projector));

    println!("[9/9] replay: `projectors rebuild` over a log of {replay_events} events");
    let (replay_consume, replays) = replay(&bin_dir, replay_events).await;
    println!("      raw consume of that topic {replay_consume}");
    for (projection, rate) in &replays {
        println!("      {projection:<13} {rate}");
    }

    println!("\n| figure | absolute | ratio to raw limit |");
    println!("|---|---|---|");
    println!(
        "| raw Kafka produce, acks=all | {:.0} records/s | 1.00 |",
        produce.per_second()
    );
    println!(
        "| raw Kafka consume, read_committed | {:.0} records/s | 1.00 |",
        consume.per_second()
    );
    println!("| raw PostgreSQL COPY | {:.0} rows/s | 1.00 |", copy.per_second());
    for (projection, rate) in &projected {
        println!(
            "| projection `{projection}` on a {events}-event backlog | {:.0} events/s | {} of consume, {} of COPY |",
            rate.per_second(),
            ratio(rate, &consume),
            ratio(rate, &copy)
        );
    }
    for (what, unit, run) in [
        ("orders", "orders", &orders_run),
        ("purchases accepted", "purchases", &purchases_run),
        ("orders with 3 catalog items accepted", "orders", &catalog_run),
    ] {
        println!(
            "| {what} over HTTP, {in_flight} in flight (p50 {:.1} ms, p99 {:.1} ms) | {:.0} {unit}/s | {} of produce |",
            ms(run.p50),
            ms(run.p99),
            run.rate.per_second(),
            ratio(&run.rate, &produce)
        );
    }
    println!(
        "| orders over HTTP through two command-api replicas, {in_flight} in flight (p50 {:.1} ms, p99 {:.1} ms) | {:.0} orders/s | {} of produce, {:.2}× one replica |",
        ms(two_replicas_run.p50),
        ms(two_replicas_run.p99),
        two_replicas_run.rate.per_second(),
        ratio(&two_replicas_run.rate, &produce),
        two_replicas_run.rate.per_second() / orders_run.rate.per_second()
    );
    println!(
        "| purchases authorized and readable (reactor + decider + projection) | {:.0} purchases/s | {} of produce |",
        authorized.per_second(),
        ratio(&authorized, &produce)
    );
    println!(
        "| orders with 3 catalog items reserved and readable (saga: 3 reservations, 3 records, 1 completion) | {:.0} orders/s | {} of produce, {:.2}× plain orders |",
        reserved.per_second(),
        ratio(&reserved, &produce),
        reserved.per_second() / orders_run.rate.per_second()
    );
    println!(
        "| raw Kafka consume of the {replay_events}-event replay log | {:.0} records/s | 1.00 |",
        replay_consume.per_second()
    );
    for (projection, rate) in &replays {
        println!(
            "| `projectors rebuild {projection}` over {replay_events} events (build, catch up, swap) | {:.0} events/s | {} of consume |",
            rate.per_second(),
            ratio(rate, &replay_consume)
        );
    }
}

/// Fills a fresh stack's log with `count` events, measures a raw consume of that topic, then
/// times `projectors rebuild` of each projection the events feed, end to end.
async fn replay(bin_dir: &Path, count: usize) -> (Rate, Vec<(&'static str, Rate)>) {
    let mut isolation = Isolation::new();
    isolation.kafka.partitions = PARTITIONS;
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    let pool = isolation.database.pool().expect("pool");
    projectors::db::migrate(&pool, &isolation.database.database_schema)
        .await
        .expect("migrate");
    produce_events(&isolation.kafka, &isolation.topics.events, count).await;
    let consume = consume_all(&isolation.kafka, &isolation.topics.events, count).await;
    let mut rates = Vec::new();
    // `--all`: every projection in one pass over the log, each swapped in when done.
    for projection in ["track_user", "order_status", "order_history", "--all"] {
        let started = Instant::now();
        let status = std::process::Command::new(bin_dir.join("projectors"))
            .args(["rebuild", projection])
            .envs(isolation.env())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("projectors rebuild runs");
        assert!(status.success(), "rebuild of {projection} failed");
        rates.push((
            projection,
            Rate {
                count,
                elapsed: started.elapsed(),
            },
        ));
    }
    (consume, rates)
}

/// Waits until `count_sql` counts `count` rows, and returns the rate at which they came since
/// `started`.
async fn counted(pool: &PgPool, what: &str, count_sql: &str, count: usize, started: Instant) -> Rate {
    wait_until(what, Duration::from_secs(900), || async {
        let counted: i64 = sqlx::query_scalar(count_sql).fetch_one(pool).await.ok()?;
        (counted >= count as i64).then_some(())
    })
    .await;
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The directory of the release binaries, next to this benchmark's own executable.
fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf();
    for binary in ["command-api", "projectors", "query-api"] {
        assert!(
            dir.join(binary).exists(),
            "build the services first: cargo build --release --bins"
        );
    }
    dir
}

fn start(dir: &Path, binary: &str, args: &[&str], isolation: &Isolation, port: u16) -> ChildService {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    env.push(("RUST_LOG", "warn".to_owned()));
    ChildService::spawn(&dir.join(binary), args, &env)
}

async fn create_topic(kafka: &KafkaArgs, topic: &str) {
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
async fn produce_events(kafka: &KafkaArgs, topic: &str, count: usize) -> Rate {
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

async fn consume_all(kafka: &KafkaArgs, topic: &str, count: usize) -> Rate {
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

async fn copy_rows(pool: &PgPool, count: usize) -> Rate {
    sqlx::query("CREATE TABLE bench_copy (LIKE order_status INCLUDING ALL)")
        .execute(pool)
        .await
        .expect("bench table");
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
        .copy_in_raw("COPY bench_copy (order_id, name, note, status, placed_at, updated_at, version) FROM STDIN")
        .await
        .expect("copy");
    copy.send(data).await.expect("copy data");
    copy.finish().await.expect("copy done");
    Rate {
        count,
        elapsed: started.elapsed(),
    }
}

/// What a run of HTTP requests measured.
struct HttpRun {
    rate: Rate,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

impl std::fmt::Display for HttpRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  p50 {:.1} ms  p99 {:.1} ms  failures {}",
            self.rate,
            ms(self.p50),
            ms(self.p99),
            self.failures
        )
    }
}

/// POSTs `total` bodies (`body(i)`), the `i`th to `urls[i % urls.len()]`, with `in_flight` at a
/// time; an answer other than `expected` counts as a failure.
async fn send_requests(
    client: &reqwest::Client,
    urls: &[String],
    total: usize,
    in_flight: usize,
    expected: u16,
    body: fn(usize) -> serde_json::Value,
) -> HttpRun {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (client, urls) = (client.clone(), urls.to_vec());
            let (next, failures) = (next.clone(), failures.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break latencies;
                    }
                    let sent = Instant::now();
                    let ok = client
                        .post(&urls[i % urls.len()])
                        .json(&body(i))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == expected);
                    latencies.push(sent.elapsed());
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    HttpRun {
        rate: Rate { count: total, elapsed },
        p50: percentile(0.50),
        p99: percentile(0.99),
        failures: failures.load(Ordering::Relaxed),
    }
}

/// Waits until the command-api at `base` is ready.
async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until(
        &format!("command-api at {base} to be ready"),
        Duration::from_secs(120),
        || async {
            let ready = client.get(format!("{base}/ready")).send().await.ok()?;
            ready.status().is_success().then_some(())
        },
    )
    .await;
}

/// An HTTP client sending `authorization` with every request.
fn authorized_client(authorization: &str, in_flight: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, authorization.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(in_flight)
        .build()
        .unwrap()
}

/// How many products the catalog orders pick their items from.
const CATALOG_PRODUCTS: usize = 30;

/// Defines the benchmark's products, each with far more stock than the run orders.
async fn stock_catalog(staff: &reqwest::Client, base: &str) {
    for n in 0..CATALOG_PRODUCTS {
        let product = format!("{base}/api/v1/products/BENCH-{n}");
        let defined = staff
            .put(&product)
            .json(&serde_json::json!({"name": format!("Bench product {n}"), "price": 4.5, "currency": "USD"}))
            .send()
            .await
            .expect("command-api answers");
        assert!(defined.status().is_success(), "{}", defined.status());
        let received = staff
            .post(format!("{product}/stock-receipts"))
            .json(&serde_json::json!({"quantity": 1_000_000}))
            .send()
            .await
            .expect("command-api answers");
        assert!(received.status().is_success(), "{}", received.status());
    }
}

/// An order of three different catalog products, one unit each, at the catalog's prices.
fn catalog_order_body(i: usize) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..3)
        .map(|k| serde_json::json!({"sku": format!("BENCH-{}", (i + k) % CATALOG_PRODUCTS), "quantity": 1}))
        .collect();
    serde_json::json!({"name": format!("customer {}", i % 500), "currency": "USD", "items": items})
}

fn order_body(i: usize) -> serde_json::Value {
    serde_json::json!({"name": format!("customer {}", i % 500), "note": "bench"})
}

/// The purchase processor's example, for one of 100 users, with the card that authorizes.
fn purchase_body(i: usize) -> serde_json::Value {
    let mut purchase = example_purchase(Uuid::from_u128(i as u128 % 100 + 1));
    purchase["username"] = format!("user {}", i % 100).into();
    purchase
}
