//! A projector killed mid-stream and restarted applies every event exactly once.

use std::time::Duration;

use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use sqlx::PgPool;

use crate::helpers::{applied, prepared, start_projector, track_users, write_orders};

const EVENTS: usize = 20_000;

fn start(isolation: &Isolation) -> ChildService {
    // Small batches make many transactions, so a kill lands between and inside them.
    start_projector(isolation, free_port(), 50)
}

/// Waits until `projection` has applied more than `than` events; returns how many.
async fn progress_beyond(pool: &PgPool, projection: &str, than: i64) -> i64 {
    wait_until(
        &format!("{projection} to pass {than} events"),
        Duration::from_secs(60),
        || async {
            let done = applied(pool, projection).await;
            (done > than).then_some(done)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_killed_mid_stream_leaves_counters_exact() {
    let (isolation, pool) = prepared().await;
    let expected = write_orders(&isolation, EVENTS, 37).await;
    let total = EVENTS as i64;

    let mut kills_mid_stream = 0;
    let mut seen = 0;
    for _ in 0..3 {
        let projector = start(&isolation);
        seen = progress_beyond(&pool, "track_user", seen).await;
        projector.kill();
        if seen < total {
            kills_mid_stream += 1;
        }
    }
    assert!(kills_mid_stream > 0, "every kill came after the projector had finished");

    let _projector = start(&isolation);
    wait_until("every event to be applied", Duration::from_secs(120), || async {
        let done = applied(&pool, "track_user").await + applied(&pool, "order_status").await;
        (done >= 2 * total).then_some(())
    })
    .await;
    assert_eq!(applied(&pool, "track_user").await, total, "checkpoint ran past the log");
    assert_eq!(
        track_users(&pool).await,
        expected,
        "no order counted twice, none skipped"
    );
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM order_status")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, total);
}
