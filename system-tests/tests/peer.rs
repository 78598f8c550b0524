//! The benchmark's peer (`system_tests::peer`) against the real PostgreSQL: every order it
//! places must be stored as an event and counted in its name's view, so a figure it reports is
//! never one for commands it dropped. `PEER_ORDERS` (default 200) and `PEER_TASKS` (default 8)
//! size the run of the first test, which prints what it measured (see it with `--nocapture`).

use std::collections::BTreeMap;

use service_kit::testing::Isolation;
use sqlx::PgPool;
use system_tests::peer;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn isolated_pool() -> (Isolation, PgPool) {
    let isolation = Isolation::new();
    let pool = isolation.database.pool().expect("pool");
    sqlx::query(&format!("CREATE SCHEMA \"{}\"", isolation.database.database_schema))
        .execute(&pool)
        .await
        .expect("schema");
    (isolation, pool)
}

/// Each name's order count, from the peer's view.
async fn counts_by_name(pool: &PgPool) -> BTreeMap<String, i64> {
    // A view without the time of its first order would not be a readable track_user row.
    let counted = "SELECT view_id, (payload->>'orders')::bigint FROM peer_orders_by_name \
                   WHERE payload->>'first_order_at' IS NOT NULL";
    sqlx::query_as(counted)
        .fetch_all(pool)
        .await
        .expect("the view")
        .into_iter()
        .collect()
}

async fn stored_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM peer_events")
        .fetch_one(pool)
        .await
        .expect("the events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_is_stored_and_counted_under_its_name() {
    let (_isolation, pool) = isolated_pool().await;
    let (orders, tasks) = (env_usize("PEER_ORDERS", 200), env_usize("PEER_TASKS", 8));
    // A first run leaves its rows behind: the second must start from empty tables all the same.
    peer::run(&pool, 30, 4).await;
    let run = peer::run(&pool, orders, tasks).await;
    println!(
        "peer: {orders} orders, {tasks} tasks: {:.0} orders/s, p50 {:?}, p99 {:?}, {} view retries",
        orders as f64 / run.elapsed.as_secs_f64(),
        run.p50,
        run.p99,
        run.view_retries
    );

    assert_eq!(run.orders, orders);
    assert_eq!(stored_events(&pool).await, orders as i64);
    let counts = counts_by_name(&pool).await;
    assert_eq!(counts.values().sum::<i64>(), orders as i64);
    let expected: BTreeMap<String, i64> = (0..orders.min(1000))
        .map(|n| (format!("customer {n}"), ((orders - n).div_ceil(1000)) as i64))
        .collect();
    assert_eq!(counts, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_of_one_name_placed_at_once_are_all_counted() {
    let (_isolation, pool) = isolated_pool().await;
    let run = peer::run_over_names(&pool, 200, 8, 3).await;

    assert!(
        run.view_retries > 0,
        "eight tasks over three names never raced for a view"
    );
    assert_eq!(stored_events(&pool).await, 200);
    let counts = counts_by_name(&pool).await;
    let expected = BTreeMap::from([
        ("customer 0".to_owned(), 67),
        ("customer 1".to_owned(), 67),
        ("customer 2".to_owned(), 66),
    ]);
    assert_eq!(counts, expected);
}
