//! A projector killed mid-stream and restarted applies every event exactly once; one restarted
//! on a log created again folds nothing of it until a rebuild.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use sqlx::PgPool;

use crate::helpers::{
    applied, get, prepared, projectors, start_projector, start_projector_logged, succeeded, track_users, write_orders,
};

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

/// Deletes the events topic and creates it again, empty, as an operator who wiped the log would.
async fn create_the_log_again(isolation: &Isolation) {
    let admin: AdminClient<DefaultClientContext> = isolation.kafka.client_config().create().expect("admin client");
    let topic = isolation.topics.events.as_str();
    for result in admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .expect("deleted")
    {
        result.expect("the events topic deleted");
    }
    wait_until("the events topic gone", Duration::from_secs(30), || async {
        let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(5)).ok()?;
        metadata.topics().iter().all(|t| t.name() != topic).then_some(())
    })
    .await;
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_created_again_is_not_folded_until_a_rebuild_matches_the_read_models_to_it() {
    let (isolation, pool) = prepared().await;
    write_orders(&isolation, 300, 7).await;
    let port = free_port();
    let projector = start_projector(&isolation, port, 50);
    wait_until("the first log folded", Duration::from_secs(60), || async {
        (applied(&pool, "track_user").await >= 300).then_some(())
    })
    .await;
    projector.kill();

    create_the_log_again(&isolation).await;
    let expected = write_orders(&isolation, 30, 3).await;
    let log = isolation.temp_file("projector.log");
    let _projector = start_projector_logged(&isolation, port, 50, &log);

    wait_until("the projector to refuse the log", Duration::from_secs(60), || async {
        let logged = std::fs::read_to_string(&log).ok()?;
        logged.contains("the events log ends at offset").then_some(())
    })
    .await;
    let ready = get(port, "/ready");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        applied(&pool, "track_user").await >= 300,
        "the checkpoints of the old log stay"
    );
    let status = succeeded(&projectors(&isolation, &["status"]).await);
    assert!(status.contains("past the log's end"), "{status}");

    succeeded(&projectors(&isolation, &["rebuild", "--all"]).await);
    wait_until("the projector to fold the new log", Duration::from_secs(60), || async {
        get(port, "/ready").starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    assert_eq!(
        track_users(&pool).await,
        expected,
        "the read models hold the new log alone"
    );
    let _ = std::fs::remove_file(&log);
}
