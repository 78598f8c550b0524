//! Zero-downtime rebuilds: fold a projection from the start of the log into a sibling schema,
//! then swap its tables into the live schema in one transaction.
//!
//! Projections use unqualified table names and every pool resolves them in its own schema
//! (`search_path`), so a rebuild is the ordinary runner with a pool for `<schema>__rebuild`:
//! the same fold, the same checkpoint table (the rebuild's own, in that schema).
//!
//! Once the rebuild has reached the head of the log, the swap transaction locks the live
//! projection's tables (`ACCESS EXCLUSIVE`, which also holds back the live runner's next batch),
//! lets the rebuild catch up with the live checkpoint if it is behind, replaces the live tables
//! by the rebuilt ones (`ALTER TABLE … SET SCHEMA`) and the live checkpoint rows by the
//! rebuild's. Queries wait for the few milliseconds the swap holds the lock and then read the
//! rebuilt tables under the same names; they never see a missing or empty table. The live
//! runners find the checkpoints moved on their next commit, write nothing, and read on from the
//! swapped-in checkpoints without leaving their group.
//!
//! Records the rebuild cannot apply become dead letters in the rebuild schema, exactly as in a
//! live run; the swap replaces the projection's live dead letters by them.
//!
//! A rebuild interrupted at any point leaves the live projection as it was; the next rebuild
//! drops the left-over schema first. One session-level advisory lock per live schema keeps two
//! rebuilds apart and tells `projectors status` one is running.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use service_kit::database::DatabaseArgs;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::projection::Projection;
use crate::runner::{self, Batch, Positions, RunnerSettings};
use crate::{db, dead_letter};
use read_models::checkpoint;

/// How long the swap transaction may hold the live tables while the rebuild catches up.
const CATCH_UP_UNDER_LOCK: Duration = Duration::from_secs(5);
/// How long the swap waits for the live tables (queries, a live batch) before trying again.
const LOCK_TIMEOUT: &str = "5s";
/// How long a poll waits for an event before the rebuild counts itself at the head.
const DRAIN_WAIT: Duration = Duration::from_millis(300);

/// What one rebuild should do.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Move the replaced tables to `<schema>__old_<timestamp>` instead of dropping them.
    pub keep_old: bool,
    /// Print a progress line about every second.
    pub progress: bool,
}

/// The projection named `name`.
pub fn projection_named(name: &str) -> anyhow::Result<Projection> {
    Projection::ALL.into_iter().find(|p| p.name() == name).with_context(|| {
        let names: Vec<_> = Projection::ALL.iter().map(|p| p.name()).collect();
        format!("unknown projection `{name}`; one of {}", names.join(", "))
    })
}

/// The schema a rebuild of `live` builds into.
pub fn rebuild_schema(live: &str) -> String {
    format!("{live}__rebuild")
}

/// The advisory lock key a rebuild of `live` holds for its whole run.
fn lock_key(live: &str) -> String {
    format!("orderstream-rebuild:{live}")
}

/// Whether a rebuild of `live` is running right now (holds its advisory lock).
pub async fn rebuild_running(pool: &PgPool, live: &str) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(lock_key(live))
        .fetch_one(&mut *conn)
        .await?;
    if free {
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(lock_key(live))
            .execute(&mut *conn)
            .await?;
    }
    Ok(!free)
}

/// Rebuilds `projections` one after the other, each swapped in as soon as it is done.
pub async fn rebuild(
    projections: &[Projection],
    settings: &RunnerSettings,
    database: &DatabaseArgs,
    options: &RebuildOptions,
) -> anyhow::Result<()> {
    let live = database.database_schema.clone();
    db::check_schema(&live)?;
    let rebuild = rebuild_schema(&live);
    db::check_schema(&rebuild)?;

    // A connection of its own, outside the pools: the advisory lock lives as long as it does,
    // so it is released however this process ends.
    let options_pg: PgConnectOptions = database.connect_options()?;
    let mut guard = PgConnection::connect_with(&options_pg)
        .await
        .context("cannot connect to PostgreSQL")?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(lock_key(&live))
        .fetch_one(&mut guard)
        .await?;
    if !locked {
        bail!("another rebuild of schema `{live}` is running");
    }

    let live_pool = database.pool()?;
    db::migrate(&live_pool, &live).await?;
    let rebuild_database = DatabaseArgs {
        database_schema: rebuild.clone(),
        ..database.clone()
    };
    for &projection in projections {
        drop_schema(&mut guard, &rebuild).await?;
        let rebuild_pool = rebuild_database.pool()?;
        db::migrate(&rebuild_pool, &rebuild).await?;
        let result = rebuild_one(
            projection,
            settings,
            &live_pool,
            &rebuild_pool,
            &live,
            &rebuild,
            options,
        )
        .await;
        rebuild_pool.close().await;
        if result.is_err() {
            // Best effort: a rebuild started later drops it anyway.
            let _ = drop_schema(&mut guard, &rebuild).await;
        }
        result.with_context(|| {
            format!(
                "rebuild of {} failed; the live projection is untouched",
                projection.name()
            )
        })?;
    }
    drop_schema(&mut guard, &rebuild).await?;
    live_pool.close().await;
    guard.close().await?;
    Ok(())
}

/// Drops the rebuild schema, left over or done with.
pub async fn drop_schema(conn: &mut PgConnection, rebuild: &str) -> anyhow::Result<()> {
    db::check_schema(rebuild)?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{rebuild}\" CASCADE"))
        .execute(conn)
        .await?;
    Ok(())
}

async fn rebuild_one(
    projection: Projection,
    settings: &RunnerSettings,
    live_pool: &PgPool,
    rebuild_pool: &PgPool,
    live: &str,
    rebuild: &str,
    options: &RebuildOptions,
) -> anyhow::Result<()> {
    let name = projection.name();
    let (consumer, mut positions) = runner::seek_to_checkpoint(projection, settings, rebuild_pool, rebuild).await?;
    let topic = settings.topics.events.clone();
    let partitions = service_kit::kafka::topics::partition_count(consumer.client(), &topic)? as i32;
    let lows: BTreeMap<i32, i64> = (0..partitions)
        .map(|p| Ok((p, watermarks(&consumer, &topic, p)?.0)))
        .collect::<anyhow::Result<_>>()?;
    let mut highs = high_watermarks(&consumer, &topic, partitions)?;
    let started = Instant::now();
    let mut last_report = started;
    let progress = Progress {
        name,
        lows: &lows,
        started,
    };
    if options.progress {
        println!("{name}: rebuilding into schema {rebuild}");
    }
    loop {
        let batch: Batch = settings
            .batching()
            .first_within(DRAIN_WAIT)
            .next(|| service_kit::kafka::recv(&consumer))
            .await?;
        let drained = batch.is_empty();
        if !drained {
            runner::commit(projection, rebuild_pool, &mut positions, &batch).await?;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            highs = high_watermarks(&consumer, &topic, partitions)?;
            last_report = Instant::now();
            if options.progress {
                println!("{}", progress.line(&positions, &highs));
            }
        }
        let at_head = (0..partitions).all(|p| position(&positions, &lows, p) >= highs[&p]);
        if !(drained || at_head) {
            continue;
        }
        match swap(
            projection,
            settings,
            &consumer,
            &mut positions,
            live_pool,
            rebuild_pool,
            live,
            rebuild,
            options,
        )
        .await?
        {
            Swap::Done => break,
            Swap::Retry(why) => {
                if options.progress {
                    println!("{name}: swap postponed ({why}); catching up");
                }
                highs = high_watermarks(&consumer, &topic, partitions)?;
            }
        }
    }
    if options.progress {
        highs = high_watermarks(&consumer, &topic, partitions)?;
        println!("{}", progress.line(&positions, &highs));
        println!("{name}: swapped in after {:.1}s", started.elapsed().as_secs_f64());
        let dead_letters = dead_letter::counts(live_pool).await?.get(name).copied().unwrap_or(0);
        if dead_letters > 0 {
            println!("{name}: {dead_letters} dead letters (projectors dead-letters list --projection {name})");
        }
    }
    Ok(())
}

enum Swap {
    Done,
    Retry(String),
}

/// The take-over, in one transaction on the live schema.
#[allow(clippy::too_many_arguments)]
async fn swap(
    projection: Projection,
    settings: &RunnerSettings,
    consumer: &StreamConsumer,
    positions: &mut Positions,
    live_pool: &PgPool,
    rebuild_pool: &PgPool,
    live: &str,
    rebuild: &str,
    options: &RebuildOptions,
) -> anyhow::Result<Swap> {
    let tables = db::tables(projection);
    let mut tx = live_pool.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(&mut *tx)
        .await?;
    let qualified: Vec<String> = tables.iter().map(|t| format!("\"{live}\".{t}")).collect();
    let locked = sqlx::query(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", qualified.join(", ")))
        .execute(&mut *tx)
        .await;
    if let Err(error) = locked {
        if is_lock_timeout(&error) {
            return Ok(Swap::Retry("live tables busy".to_owned()));
        }
        return Err(error.into());
    }
    // The live runner cannot commit now: its checkpoint stays where it is read here.
    let live_checkpoints: BTreeMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(&format!(
        "SELECT partition, next_offset FROM \"{live}\".projection_checkpoint WHERE projection = $1 FOR UPDATE"
    ))
    .bind(projection.name())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // Never swap in a projection behind the live one: clients would see it go back in time.
    // A partition the rebuild has no checkpoint for is at the start, where the live runners
    // create theirs.
    let behind = |positions: &Positions| {
        live_checkpoints
            .iter()
            .any(|(p, live)| positions.get(p).copied().unwrap_or(checkpoint::START) < *live)
    };
    let give_up = Instant::now() + CATCH_UP_UNDER_LOCK;
    while behind(positions) {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Swap::Retry("still behind the live checkpoint".to_owned()));
        }
        let batch: Batch = settings
            .batching()
            .first_within(left)
            .next(|| service_kit::kafka::recv(consumer))
            .await?;
        if !batch.is_empty() {
            runner::commit(projection, rebuild_pool, positions, &batch).await?;
        }
    }
    if options.keep_old {
        let old = format!("{live}__old_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        db::check_schema(&old)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{old}\""))
            .execute(&mut *tx)
            .await?;
        for_each_table(&mut tx, tables, |table| {
            format!("ALTER TABLE \"{live}\".{table} SET SCHEMA \"{old}\"")
        })
        .await?;
        if options.progress {
            println!("{}: old tables kept in schema {old}", projection.name());
        }
    } else {
        for_each_table(&mut tx, tables, |table| format!("DROP TABLE \"{live}\".{table}")).await?;
    }
    // Index and constraint names are unique per schema; the live ones left with their tables.
    for_each_table(&mut tx, tables, |table| {
        format!("ALTER TABLE \"{rebuild}\".{table} SET SCHEMA \"{live}\"")
    })
    .await?;
    sqlx::query(&format!(
        "DELETE FROM \"{live}\".projection_checkpoint WHERE projection = $1"
    ))
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO \"{live}\".projection_checkpoint (projection, partition, next_offset) \
         SELECT projection, partition, next_offset FROM \"{rebuild}\".projection_checkpoint WHERE projection = $1"
    ))
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    dead_letter::replace(&mut tx, projection, rebuild, live).await?;
    tx.commit().await?;
    Ok(Swap::Done)
}

/// Runs the statement `sql` gives for each of `tables`, in order, on `conn`.
async fn for_each_table(
    conn: &mut PgConnection,
    tables: &[&str],
    sql: impl Fn(&str) -> String,
) -> Result<(), sqlx::Error> {
    for table in tables {
        sqlx::query(&sql(table)).execute(&mut *conn).await?;
    }
    Ok(())
}

fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}

/// The next offset the rebuild reads in `partition`.
fn position(positions: &Positions, lows: &BTreeMap<i32, i64>, partition: i32) -> i64 {
    positions
        .get(&partition)
        .copied()
        .unwrap_or(lows.get(&partition).copied().unwrap_or(0))
}

fn watermarks(consumer: &StreamConsumer, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .with_context(|| format!("watermarks of {topic} partition {partition}"))
}

fn high_watermarks(consumer: &StreamConsumer, topic: &str, partitions: i32) -> anyhow::Result<BTreeMap<i32, i64>> {
    (0..partitions)
        .map(|p| Ok((p, watermarks(consumer, topic, p)?.1)))
        .collect()
}

struct Progress<'a> {
    name: &'static str,
    lows: &'a BTreeMap<i32, i64>,
    started: Instant,
}

impl Progress<'_> {
    fn line(&self, positions: &Positions, highs: &BTreeMap<i32, i64>) -> String {
        let total: i64 = highs
            .iter()
            .map(|(p, h)| h - self.lows.get(p).copied().unwrap_or(0))
            .sum();
        let done: i64 = highs
            .keys()
            .map(|&p| position(positions, self.lows, p) - self.lows.get(&p).copied().unwrap_or(0))
            .sum();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / seconds;
        let left = (total - done).max(0);
        let eta = if left == 0 {
            "0s".to_owned()
        } else if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".to_owned()
        };
        let percent = if total > 0 {
            100.0 * done as f64 / total as f64
        } else {
            100.0
        };
        format!(
            "{}: {done} / {total} events ({percent:.1}%), {rate:.0} events/s, about {eta} left",
            self.name
        )
    }
}
