use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;

use chrono::{DateTime, Utc};
use projectors::db;
use rdkafka::producer::FutureProducer;
use service_kit::testing::{order_placed, placed_envelope, produce, ChildService, Isolation};
use sqlx::PgPool;

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
    let mut events = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("customer {:03}", i % names);
        // Later orders sometimes carry earlier times, as orders from several partitions would.
        let placed_at = base + chrono::Duration::seconds(((i * 7919) % count) as i64);
        events.push(placed_envelope(order_placed(&name, placed_at)));
        let entry = expected.entry(name).or_insert(Expected {
            counter: 0,
            created_at: placed_at,
        });
        entry.counter += 1;
        entry.created_at = entry.created_at.min(placed_at);
    }
    produce(&producer, &isolation.topics.events, events).await;
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

/// The projectors binary under test.
pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_projectors"))
}

/// Runs `projectors args...` in `isolation`, with `env` on top of its settings, to its end; off
/// the async workers, which the test's own tasks need meanwhile.
pub(crate) async fn projectors_with(isolation: &Isolation, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = std::process::Command::new(binary());
    command.args(args).envs(isolation.env()).envs(env.iter().copied());
    tokio::task::spawn_blocking(move || command.output().expect("projectors runs"))
        .await
        .unwrap()
}

/// Runs `projectors args...` in `isolation` to its end.
pub(crate) async fn projectors(isolation: &Isolation, args: &[&str]) -> Output {
    projectors_with(isolation, &[], args).await
}

/// What a run printed, which must have succeeded.
pub(crate) fn succeeded(output: &Output) -> String {
    service_kit::testing::succeeded("projectors", output)
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `projectors run` in `isolation`, serving `/metrics` on `port`, folding at most `batch_size`
/// events per transaction; killed (SIGKILL) when dropped.
pub(crate) fn start_projector(isolation: &Isolation, port: u16, batch_size: usize) -> ChildService {
    ChildService::spawn(binary(), &["run"], &projector_env(isolation, port, batch_size))
}

/// [`start_projector`], logging (`info`, as text) to `log`.
pub(crate) fn start_projector_logged(isolation: &Isolation, port: u16, batch_size: usize, log: &Path) -> ChildService {
    let mut env = projector_env(isolation, port, batch_size);
    env.push(("RUST_LOG", "info".to_owned()));
    env.push(("LOG_FORMAT", "text".to_owned()));
    ChildService::spawn_logged(binary(), &["run"], &env, log)
}

/// The environment of `projectors run` in `isolation`, serving `/metrics` on `port`, folding at
/// most `batch_size` events per transaction.
pub(crate) fn projector_env(isolation: &Isolation, port: u16, batch_size: usize) -> Vec<(&'static str, String)> {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    env.push(("PROJECTOR_BATCH_SIZE", batch_size.to_string()));
    env
}

/// The body of `GET /metrics` on `port`.
pub(crate) fn metrics(port: u16) -> String {
    get(port, "/metrics")
}

/// The whole answer (status line, headers, body) to `GET path` on `port`.
pub(crate) fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the projector's endpoint");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
