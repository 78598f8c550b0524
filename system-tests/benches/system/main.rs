//! orderstream's system benchmark, against the real broker and database.
//!
//! Measures, in one run and on one isolated set of topics and schema:
//! - raw limits: rdkafka produce (acks=all, idempotent) and `read_committed` consume of records
//!   shaped like our events; PostgreSQL `COPY` of rows shaped like `order_status` into the
//!   indexed table and into an unlogged one without indexes, and folded `UNNEST` counter upserts
//!   shaped like `track_user`;
//! - projection events/s on a backlog, per projection, and the projectors' CPU per event;
//! - orders/s end to end over HTTP with many requests in flight, their p50/p99 latency and the
//!   CPU each order costs; one client alone; a fixed offered rate (an open loop, latency counted
//!   from each request's appointed time); then through two command-api replicas sharing the
//!   decider's partitions, requests alternating between them;
//! - purchases/s end to end: accepted over HTTP, charged by the payment reactor, authorized by
//!   the decider and readable in the `purchases` read model;
//! - orders with three catalog items each: accepted over HTTP (priced from the catalog), and
//!   reserved by the stock reservation saga and readable as `reserved` in `order_status`;
//! - the peer: the same orders through `cqrs-es` + `postgres-es`, in process, no HTTP;
//! - replay: `projectors rebuild` of each order projection over a log of `BENCH_REPLAY_EVENTS`
//!   (default 1000000) events, against a raw consume of that same topic.
//!
//! Each figure is printed absolute and as a ratio to its raw limit or peer. Sizes come from
//! `BENCH_EVENTS` (backlog and raw records, default 200000), `BENCH_ORDERS` (HTTP orders, and the
//! peer's, default 20000), `BENCH_PURCHASES` (HTTP purchases, default 10000),
//! `BENCH_CATALOG_ORDERS` (HTTP orders with catalog items, default 5000), `BENCH_IN_FLIGHT`
//! (concurrent requests, default 64), `BENCH_LONE_ORDERS` (one client alone, default 1000),
//! `BENCH_OPEN_RATE` and `BENCH_OPEN_SECONDS` (the open loop, default 2000 orders/s for 10 s).

mod cpu;
mod http;
mod raw;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cpu::CpuTime;
use http::{authorized_client, wait_ready, HttpRun, Requests};
use raw::{consume_all, produce_events};
use service_kit::auth::{CATALOG_WRITE, PURCHASES_REFUND, PURCHASES_WRITE};
use service_kit::testing::{
    bearer, bearer_user, example_purchase, free_port, metric, wait_until, ChildService, Isolation,
};
use sqlx::PgPool;
use uuid::Uuid;

const PARTITIONS: i32 = 12;
/// The decider's counter of Kafka transactions committed.
const TRANSACTIONS: &str = "orderstream_decider_transactions_total";
/// How many events a projection folds per transaction (the projectors' default batch).
const PROJECTION_BATCH: usize = 5000;

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

/// The closing table: one row per figure.
#[derive(Default)]
struct Table(Vec<[String; 3]>);

impl Table {
    fn row(&mut self, figure: impl Into<String>, absolute: impl Into<String>, against: impl Into<String>) {
        self.0.push([figure.into(), absolute.into(), against.into()]);
    }

    /// A raw limit: its rate in `unit`s per second, against which other rows are measured.
    fn limit(&mut self, figure: impl Into<String>, rate: &Rate, unit: &str) {
        self.row(figure, format!("{:.0} {unit}/s", rate.per_second()), "1.00");
    }

    fn print(&self) {
        println!("\n| figure | absolute | against its raw limit or peer |");
        println!("|---|---|---|");
        for [figure, absolute, against] in &self.0 {
            println!("| {figure} | {absolute} | {against} |");
        }
    }
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
    let lone_orders = env_usize("BENCH_LONE_ORDERS", 1_000);
    let open_rate = env_usize("BENCH_OPEN_RATE", 2_000) as u32;
    let open_seconds = env_usize("BENCH_OPEN_SECONDS", 10) as u64;
    let mut isolation = Isolation::new();
    isolation.kafka.partitions = PARTITIONS;
    let bin_dir = release_dir();
    let mut table = Table::default();
    println!("orderstream system benchmark: {PARTITIONS} partitions, {events} events, {orders} HTTP orders, {in_flight} in flight");

    println!("\n[1/12] raw Kafka produce (acks=all, idempotent, event-shaped records)");
    let raw_topic = format!("{}bench.raw", isolation.kafka.topic_prefix);
    raw::create_topic(&isolation.kafka, &raw_topic).await;
    let produce = produce_events(&isolation.kafka, &raw_topic, events).await;
    println!("      {produce}");
    table.limit("raw Kafka produce, acks=all", &produce, "records");

    println!("[2/12] raw Kafka consume (read_committed)");
    let consume = consume_all(&isolation.kafka, &raw_topic, events).await;
    println!("      {consume}");
    table.limit("raw Kafka consume, read_committed", &consume, "records");

    let pool = isolation.database.pool().expect("pool");
    projectors::db::migrate(&pool, &isolation.database.database_schema)
        .await
        .expect("migrate");
    println!("[3/12] raw PostgreSQL: COPY into order_status (indexed) and into an unlogged copy without indexes; folded UNNEST upserts into track_user");
    let copy = raw::copy_indexed(&pool, events).await;
    let copy_unlogged = raw::copy_unlogged(&pool, events).await;
    let upserts = raw::folded_upserts(&pool, events, PROJECTION_BATCH).await;
    println!("      COPY, indexed      {copy}");
    println!("      COPY, unlogged     {copy_unlogged}");
    println!("      folded upserts     {upserts}");
    table.limit("raw PostgreSQL COPY into `order_status`", &copy, "rows");
    table.limit(
        "raw PostgreSQL COPY into an unlogged table without indexes",
        &copy_unlogged,
        "rows",
    );
    table.limit(
        format!("raw PostgreSQL folded `UNNEST` upserts into `track_user`, {PROJECTION_BATCH} events per transaction"),
        &upserts,
        "events",
    );

    println!("[4/12] projection of a backlog of {events} events (every projection at once)");
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    produce_events(&isolation.kafka, &isolation.topics.events, events).await;
    let projector = start(&bin_dir, "projectors", &["run"], &isolation, free_port());
    let cpu_before = CpuTime::now(&[projector.id()]);
    let started = Instant::now();
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
    let projection_cpu = cpu_before.per_unit(&CpuTime::now(&[projector.id()]), events);
    for (projection, rate) in &projected {
        println!("      {projection:<13} {rate}");
    }
    println!("      per event: {projection_cpu}");
    // Each projection beside the raw limits of what it does: `track_user` folds upserts of what it
    // consumes, `order_status` writes whole rows as a COPY does.
    let limits = [
        [("folded upserts", &upserts), ("consume", &consume)],
        [("unlogged COPY", &copy_unlogged), ("indexed COPY", &copy)],
    ];
    for ((projection, rate), limits) in projected.iter().zip(limits) {
        table.row(
            format!("projection `{projection}` on a {events}-event backlog"),
            format!("{:.0} events/s", rate.per_second()),
            limits
                .map(|(name, limit)| format!("{} of {name}", ratio(rate, limit)))
                .join(", "),
        );
    }
    table.row(
        "CPU per projected event (every projection folds each)",
        format!("{:.1} µs in the projectors", projection_cpu.processes_us),
        format!("{:.1} µs on the machine", projection_cpu.machine_us),
    );

    println!(
        "[5/12] orders end to end over HTTP, {in_flight} in flight (command-api, projectors and query-api running)"
    );
    let port = free_port();
    let command_api = start(&bin_dir, "command-api", &[], &isolation, port);
    let query_api = start(&bin_dir, "query-api", &[], &isolation, free_port());
    let ours = [command_api.id(), projector.id(), query_api.id()];
    let base = format!("http://127.0.0.1:{port}");
    // Orders come from one user; purchases from the purchase processor, which requests them
    // for its 100 users and so needs the scope that acts for other users.
    let client = authorized_client(&bearer_user(Uuid::from_u128(1)), in_flight);
    let processor = authorized_client(&bearer(&[PURCHASES_WRITE, PURCHASES_REFUND]), in_flight);
    wait_ready(&client, &base).await;
    let place_orders = Requests {
        client: client.clone(),
        urls: vec![format!("{base}/api/v1/orders")],
        body: order_body,
        expected: 201,
    };
    let cpu_before = CpuTime::now(&ours);
    let transactions_before = metric(&client, &base, TRANSACTIONS).await;
    let orders_run = place_orders.closed_loop(orders, in_flight).await;
    let per_transaction = orders as f64 / (metric(&client, &base, TRANSACTIONS).await - transactions_before) as f64;
    counted(
        &pool,
        "every order to be projected",
        "SELECT count(*) FROM order_status",
        events + orders,
        Instant::now(),
    )
    .await;
    let order_cpu = cpu_before.per_unit(&CpuTime::now(&ours), orders);
    println!("      {orders_run}");
    println!("      per order, placed and projected: {order_cpu}");
    println!("      {per_transaction:.1} commands per decider transaction");

    println!("[6/12] one client alone: {lone_orders} orders, one at a time");
    let lone_run = place_orders.closed_loop(lone_orders, 1).await;
    println!("      {lone_run}");

    println!("[7/12] a fixed offered rate: {open_rate} orders/s for {open_seconds} s (open loop)");
    let open_run = place_orders
        .open_loop(open_rate, Duration::from_secs(open_seconds))
        .await;
    println!("      {open_run}");

    println!("[8/12] purchases end to end: HTTP, the payment reactor, the decider, the read model");
    let purchases_to = Requests {
        client: processor,
        urls: vec![format!("{base}/api/v1/purchases")],
        body: purchase_body,
        expected: 202,
    };
    let (purchases_run, authorized) = read_back(
        purchases_to,
        purchases,
        in_flight,
        &pool,
        "every purchase to read back authorized",
        "SELECT count(*) FROM purchases WHERE status = 'authorized'",
    )
    .await;
    println!("      authorized {authorized}");

    println!("[9/12] orders with 3 catalog items each: priced from the catalog, reserved by the stock saga");
    let staff = authorized_client(&bearer(&[CATALOG_WRITE]), in_flight);
    stock_catalog(&staff, &base).await;
    let catalog_orders_to = Requests {
        body: catalog_order_body,
        ..place_orders.clone()
    };
    let (catalog_run, reserved) = read_back(
        catalog_orders_to,
        catalog_orders,
        in_flight,
        &pool,
        "every catalog order to read back reserved",
        "SELECT count(*) FROM order_status WHERE stock_status = 'reserved'",
    )
    .await;
    println!("      reserved   {reserved}");

    println!("[10/12] orders end to end over HTTP through two command-api replicas, alternately");
    let second_port = free_port();
    let second = start(&bin_dir, "command-api", &[], &isolation, second_port);
    let second_base = format!("http://127.0.0.1:{second_port}");
    wait_ready(&client, &second_base).await;
    let two_replicas_run = Requests {
        urls: vec![format!("{base}/api/v1/orders"), format!("{second_base}/api/v1/orders")],
        ..place_orders.clone()
    }
    .closed_loop(orders, in_flight)
    .await;
    println!("      {two_replicas_run}");
    drop((command_api, second, query_api, projector));

    println!("[11/12] the peer: the same orders through cqrs-es 0.5 + postgres-es 0.5, in process, no HTTP");
    let peer_wide = system_tests::peer::run(&pool, orders, in_flight).await;
    println!("      {in_flight} tasks  {}", peer_line(&peer_wide));
    let peer_narrow = system_tests::peer::run(&pool, orders, 8).await;
    println!("      8 tasks   {}", peer_line(&peer_narrow));
    let peer_rate = Rate {
        count: peer_wide.orders,
        elapsed: peer_wide.elapsed,
    };

    println!("[12/12] replay: `projectors rebuild` over a log of {replay_events} events");
    let (replay_consume, replays) = replay(&bin_dir, replay_events).await;
    println!("      raw consume of that topic {replay_consume}");
    for (projection, rate) in &replays {
        println!("      {projection:<13} {rate}");
    }

    let http_row = |table: &mut Table, what: String, unit: &str, run: &HttpRun, against: String| {
        table.row(
            format!("{what} (p50 {:.1} ms, p99 {:.1} ms)", ms(run.p50), ms(run.p99)),
            format!("{:.0} {unit}/s", run.rate.per_second()),
            against,
        );
    };
    http_row(
        &mut table,
        format!("orders over HTTP, {in_flight} in flight"),
        "orders",
        &orders_run,
        format!(
            "{:.2}× the peer at {in_flight} tasks, {} of produce",
            orders_run.rate.per_second() / peer_rate.per_second(),
            ratio(&orders_run.rate, &produce)
        ),
    );
    table.row(
        format!("commands per decider transaction, {in_flight} in flight"),
        format!("{per_transaction:.1}"),
        "",
    );
    table.row(
        "CPU per order, placed over HTTP and projected",
        format!("{:.0} µs in our processes", order_cpu.processes_us),
        format!("{:.0} µs on the machine", order_cpu.machine_us),
    );
    http_row(
        &mut table,
        "orders from one client alone".to_owned(),
        "orders",
        &lone_run,
        format!(
            "the peer at 8 tasks: p50 {:.1} ms, p99 {:.1} ms",
            ms(peer_narrow.p50),
            ms(peer_narrow.p99)
        ),
    );
    http_row(
        &mut table,
        format!(
            "orders offered at {open_rate}/s (open loop, {} failed)",
            open_run.failures
        ),
        "orders",
        &open_run,
        format!(
            "{} of the rate offered",
            ratio(
                &open_run.rate,
                &Rate {
                    count: open_rate as usize,
                    elapsed: Duration::from_secs(1)
                }
            )
        ),
    );
    http_row(
        &mut table,
        format!("purchases accepted over HTTP, {in_flight} in flight"),
        "purchases",
        &purchases_run,
        format!("{} of produce", ratio(&purchases_run.rate, &produce)),
    );
    http_row(
        &mut table,
        format!("orders with 3 catalog items accepted over HTTP, {in_flight} in flight"),
        "orders",
        &catalog_run,
        format!("{} of produce", ratio(&catalog_run.rate, &produce)),
    );
    http_row(
        &mut table,
        format!("orders over HTTP through two command-api replicas, {in_flight} in flight"),
        "orders",
        &two_replicas_run,
        format!(
            "{:.2}× one replica",
            two_replicas_run.rate.per_second() / orders_run.rate.per_second()
        ),
    );
    table.row(
        "purchases authorized and readable (reactor + decider + projection)",
        format!("{:.0} purchases/s", authorized.per_second()),
        format!("{} of produce", ratio(&authorized, &produce)),
    );
    table.row(
        "orders with 3 catalog items reserved and readable (saga: 3 reservations, 3 records, 1 completion)",
        format!("{:.0} orders/s", reserved.per_second()),
        format!(
            "{:.2}× plain orders",
            reserved.per_second() / orders_run.rate.per_second()
        ),
    );
    for (tasks, peer) in [(in_flight, &peer_wide), (8, &peer_narrow)] {
        table.row(
            format!(
                "peer: cqrs-es + postgres-es, {tasks} tasks, in process (p50 {:.1} ms, p99 {:.1} ms)",
                ms(peer.p50),
                ms(peer.p99)
            ),
            format!("{:.0} orders/s", peer.orders as f64 / peer.elapsed.as_secs_f64()),
            "1.00",
        );
    }
    table.limit(
        format!("raw Kafka consume of the {replay_events}-event replay log"),
        &replay_consume,
        "records",
    );
    for (projection, rate) in &replays {
        table.row(
            format!("`projectors rebuild {projection}` over {replay_events} events (build, catch up, swap)"),
            format!("{:.0} events/s, {:.1} s", rate.per_second(), rate.elapsed.as_secs_f64()),
            format!("{} of consume", ratio(rate, &replay_consume)),
        );
    }
    table.print();
}

fn peer_line(peer: &system_tests::peer::PeerRun) -> String {
    format!(
        "{:>10.0}/s  ({} in {:.2} s)  p50 {:.1} ms  p99 {:.1} ms  view updates retried {}",
        peer.orders as f64 / peer.elapsed.as_secs_f64(),
        peer.orders,
        peer.elapsed.as_secs_f64(),
        ms(peer.p50),
        ms(peer.p99),
        peer.view_retries
    )
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

/// Sends `total` requests, `in_flight` at a time, then waits until `count_sql` counts them all in
/// the read model: the HTTP run, and the rate from the first request to the last row read back.
async fn read_back(
    requests: Requests,
    total: usize,
    in_flight: usize,
    pool: &PgPool,
    what: &str,
    count_sql: &str,
) -> (HttpRun, Rate) {
    let started = Instant::now();
    let run = requests.closed_loop(total, in_flight).await;
    println!("      accepted   {run}");
    let rate = counted(pool, what, count_sql, total, started).await;
    (run, rate)
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
