//! `projectors rebuild --all` while the live projector runs and orders keep coming: every read
//! model is swapped for one rebuilt from the log, queries never see a table go missing, empty
//! or back in time, and the live projector carries on from the rebuild's checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use read_models::status::rebuild_running;
use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use sqlx::PgPool;

use crate::helpers::{
    applied, binary, merge, prepared, projectors, projectors_with, start_projector, start_projector_logged, succeeded,
    track_users, write_orders,
};

const FIRST_ORDERS: usize = 4_000;
const NAMES: usize = 37;
const PROJECTIONS: [&str; 5] = ["track_user", "order_status", "order_history", "purchases", "products"];

async fn count(pool: &PgPool, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
}

async fn oid(pool: &PgPool, table: &str) -> u32 {
    let oid: sqlx::postgres::types::Oid = sqlx::query_scalar(&format!("SELECT '{table}'::regclass::oid"))
        .fetch_one(pool)
        .await
        .expect("table oid");
    oid.0
}

async fn wait_caught_up(isolation: &Isolation, pool: &PgPool, projections: &[&str]) {
    let written = isolation.records_written(&isolation.topics.events);
    wait_until("live projections to catch up", Duration::from_secs(120), || async {
        for projection in projections {
            if applied(pool, projection).await < written {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_under_load_swaps_in_identical_read_models_without_downtime() {
    let (isolation, pool) = prepared().await;
    let mut expected = write_orders(&isolation, FIRST_ORDERS, NAMES).await;
    // Small batches keep the live projector behind the writer, so the rebuild, reading in
    // large batches, overtakes it and the swap moves the checkpoint under its feet.
    let log = isolation.temp_file("live-projector.log");
    let _live = start_projector_logged(&isolation, free_port(), 2, &log);
    wait_caught_up(&isolation, &pool, &["track_user", "order_status", "order_history"]).await;
    let before: Vec<u32> = table_oids(&pool).await;

    // Orders keep coming while the rebuild runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (isolation, stop) = (isolation.clone(), stop.clone());
        async move {
            let mut written = BTreeMap::new();
            let mut orders = 0;
            while !stop.load(Ordering::Acquire) || orders == 0 {
                merge(&mut written, write_orders(&isolation, 500, NAMES).await);
                orders += 500;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (written, orders)
        }
    });

    // A reader watching the tables the whole time: never an error, never fewer rows.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn({
        let (pool, watching) = (pool.clone(), watching.clone());
        async move {
            let mut last = BTreeMap::new();
            let mut reads = 0u64;
            while watching.load(Ordering::Acquire) {
                for table in ["track_user", "order_status", "order_history"] {
                    let rows = count(&pool, table)
                        .await
                        .unwrap_or_else(|e| panic!("query on {table} failed during the rebuild: {e}"));
                    let previous = last.insert(table, rows).unwrap_or(0);
                    assert!(rows > 0, "{table} was empty during the rebuild");
                    assert!(rows >= previous, "{table} went back from {previous} to {rows} rows");
                    reads += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        }
    });

    let stdout =
        succeeded(&projectors_with(&isolation, &[("PROJECTOR_BATCH_SIZE", "500")], &["rebuild", "--all"]).await);
    eprintln!("{stdout}");
    for projection in PROJECTIONS {
        assert!(
            stdout.contains(&format!("{projection}: swapped in")),
            "no swap of {projection}: {stdout}"
        );
    }
    assert!(stdout.contains("events/s"), "no progress line: {stdout}");

    stop.store(true, Ordering::Release);
    let (more, more_orders) = writer.await.unwrap();
    merge(&mut expected, more);
    let orders = (FIRST_ORDERS + more_orders) as i64;

    // The live projector carries on from the rebuilt checkpoint.
    wait_caught_up(&isolation, &pool, &PROJECTIONS).await;
    watching.store(false, Ordering::Release);
    let reads = watcher
        .await
        .expect("no reader saw an error, an empty or shrinking table");
    assert!(reads > 0);

    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let restarts = logged.matches("projection replaced").count();
    eprintln!("live projections restarted from a swapped-in checkpoint {restarts} times");
    let _ = std::fs::remove_file(&log);
    assert!(restarts > 0, "the live projector never noticed a swap:\n{logged}");

    let after = table_oids(&pool).await;
    for (i, table) in TABLES.iter().enumerate() {
        assert_ne!(before[i], after[i], "{table} was not replaced");
    }
    assert_eq!(track_users(&pool).await, expected, "every order counted exactly once");
    assert_eq!(count(&pool, "order_status").await.unwrap(), orders);
    assert_eq!(count(&pool, "order_history").await.unwrap(), orders);
    for projection in PROJECTIONS {
        assert_eq!(applied(&pool, projection).await, orders, "{projection} checkpoint");
    }
    let leftover: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(format!("{}__rebuild", isolation.database.database_schema))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!leftover, "the rebuild schema was dropped");

    // Row for row: what a projector that never saw a rebuild holds, built from scratch in a
    // schema of its own over the same log.
    let mut reference = isolation.clone();
    reference.database.database_schema = format!("{}_reference", isolation.database.database_schema);
    let reference_pool = reference.database.pool().unwrap();
    projectors::db::migrate(&reference_pool, &reference.database.database_schema)
        .await
        .unwrap();
    let _reference_projector = start_projector(&reference, free_port(), 500);
    wait_caught_up(&isolation, &reference_pool, &PROJECTIONS).await;
    for table in TABLES {
        assert_eq!(
            dump(&pool, table).await,
            dump(&reference_pool, table).await,
            "{table} differs from a projection that was never rebuilt"
        );
    }
}

/// Every row of `table` as JSON text, sorted.
async fn dump(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"))
        .fetch_all(pool)
        .await
        .expect("table dump")
}

const TABLES: [&str; 6] = [
    "track_user",
    "order_status",
    "order_history",
    "purchases",
    "user_spend",
    "products",
];

async fn table_oids(pool: &PgPool) -> Vec<u32> {
    let mut oids = Vec::new();
    for table in TABLES {
        oids.push(oid(pool, table).await);
    }
    oids
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rebuild_leaves_the_live_projection_and_can_start_again() {
    let (isolation, pool) = prepared().await;
    let expected = write_orders(&isolation, 20_000, NAMES).await;
    let _live = start_projector(&isolation, free_port(), 100);
    wait_caught_up(&isolation, &pool, &["track_user"]).await;
    let before = oid(&pool, "track_user").await;
    let live = &isolation.database.database_schema;
    // However fast the rebuild folds, it is still running when it is killed: while this holds
    // the live table, its swap cannot lock it and waits to try again.
    let mut hold = pool.begin().await.unwrap();
    sqlx::query(&format!("LOCK TABLE \"{live}\".track_user IN ACCESS SHARE MODE"))
        .execute(&mut *hold)
        .await
        .unwrap();

    let mut env = isolation.env();
    env.push(("PROJECTOR_BATCH_SIZE", "50".to_owned()));
    let rebuild = ChildService::spawn(binary(), &["rebuild", "track_user"], &env);
    let rebuild_schema = format!("{}__rebuild", isolation.database.database_schema);
    wait_until("the rebuild to make progress", Duration::from_secs(60), || async {
        let done: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT sum(next_offset)::bigint FROM \"{rebuild_schema}\".projection_checkpoint"
        ))
        .fetch_one(&pool)
        .await
        .ok()
        .flatten();
        done.filter(|&d| d > 0)
    })
    .await;
    // Seen in pg_locks, without taking the lock a rebuild starting now would need.
    assert!(
        rebuild_running(&pool, live).await.unwrap(),
        "the rebuild's lock is seen"
    );
    rebuild.kill();
    wait_until("the killed rebuild's lock to go", Duration::from_secs(30), || async {
        (!rebuild_running(&pool, live).await.ok()?).then_some(())
    })
    .await;
    hold.rollback().await.unwrap();
    assert_eq!(oid(&pool, "track_user").await, before, "live table untouched");
    assert_eq!(track_users(&pool).await, expected);

    let status = succeeded(&projectors(&isolation, &["status"]).await);
    assert!(status.contains("track_user: lag 0"), "{status}");
    assert!(status.contains("interrupted rebuild"), "{status}");

    succeeded(&projectors(&isolation, &["rebuild", "track_user"]).await);
    assert_ne!(oid(&pool, "track_user").await, before, "track_user replaced");
    assert_eq!(track_users(&pool).await, expected);
}

/// What the catalog says of every table of `schema`: persistence, columns, indexes and
/// constraints, with the schema's name taken out of their definitions.
async fn catalog(pool: &PgPool, schema: &str) -> Vec<String> {
    let queries = [
        "SELECT format('%s %s %s', relname, relkind, relpersistence) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relkind IN ('r', 'i')",
        "SELECT format('%s.%s %s %s %s %s %s', table_name, column_name, data_type, is_nullable, \
           column_default, collation_name, ordinal_position) \
         FROM information_schema.columns WHERE table_schema = $1",
        "SELECT format('%s: %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = $1",
        "SELECT format('%s.%s: %s', t.relname, conname, pg_get_constraintdef(c.oid)) FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1",
    ];
    let mut lines = Vec::new();
    for query in queries {
        let rows: Vec<String> = sqlx::query_scalar(&format!("{query} ORDER BY 1"))
            .bind(schema)
            .fetch_all(pool)
            .await
            .expect("catalog");
        lines.extend(rows.into_iter().map(|row| row.replace(schema, "<schema>")));
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_in_tables_are_logged_with_every_index_and_constraint_of_the_migrations() {
    let (isolation, pool) = prepared().await;
    write_orders(&isolation, 300, NAMES).await;
    succeeded(&projectors(&isolation, &["rebuild", "--all"]).await);
    let live = &isolation.database.database_schema;
    let rebuilt = catalog(&pool, live).await;
    assert!(
        rebuilt
            .iter()
            .any(|line| line.starts_with("order_status_by_placed: CREATE INDEX")),
        "{rebuilt:#?}"
    );
    assert!(
        !rebuilt.iter().any(|line| line.ends_with(" u")),
        "an unlogged relation: {rebuilt:#?}"
    );

    let mut fresh = isolation.clone();
    fresh.database.database_schema = format!("{live}_fresh");
    let fresh_pool = fresh.database.pool().unwrap();
    projectors::db::migrate(&fresh_pool, &fresh.database.database_schema)
        .await
        .unwrap();
    // Each through a pool whose `search_path` is its schema, so definitions name it alike.
    let migrated = catalog(&fresh_pool, &fresh.database.database_schema).await;
    assert_eq!(rebuilt, migrated, "the rebuilt schema differs from the migrations'");
}

/// The rebuild and the live lag ask every partition's start and head of the log in one request;
/// what they get is what asking partition by partition gets.
#[tokio::test]
async fn the_log_s_starts_and_heads_asked_at_once_are_those_of_each_partition() {
    use rdkafka::consumer::StreamConsumer;
    use rdkafka::Offset;
    use service_kit::kafka::topics::{offsets_at, watermarks};

    let (isolation, _pool) = prepared().await;
    write_orders(&isolation, 500, NAMES).await;
    let consumer: StreamConsumer = isolation
        .kafka
        .consumer_config("starts-and-heads")
        .create()
        .expect("consumer");
    let topic = &isolation.topics.events;
    let partitions: Vec<i32> = (0..isolation.kafka.partitions).collect();
    let within = Duration::from_secs(10);
    let (starts, heads) = (
        offsets_at(&consumer, topic, &partitions, Offset::Beginning, within).expect("starts"),
        offsets_at(&consumer, topic, &partitions, Offset::End, within).expect("heads"),
    );
    let one_by_one: BTreeMap<i32, (i64, i64)> = partitions
        .iter()
        .map(|&p| (p, watermarks(&consumer, topic, p, within).expect("watermarks")))
        .collect();
    let at_once: BTreeMap<i32, (i64, i64)> = partitions.iter().map(|p| (*p, (starts[p], heads[p]))).collect();
    assert_eq!(at_once, one_by_one);
    assert_eq!(heads.values().sum::<i64>(), 500, "every order written counts");
}
