//! Zero-downtime rebuilds: fold a projection from the start of the log into a sibling schema,
//! then swap its tables into the live schema in one transaction.
//!
//! Projections use unqualified table names and every pool resolves them in its own schema
//! (`search_path`), so a rebuild folds with the ordinary runner's code into a pool for
//! `<schema>__rebuild`: the same fold, the same checkpoint table (the rebuild's own, in that
//! schema). Several projections are rebuilt in one pass over the log (`feed`: read and decoded
//! ahead of the fold), into tables shaped for a bulk load until their swap (`shadow`), with
//! large batches whose new rows are copied rather than upserted.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Offset;
use service_kit::database::{is_lock_timeout, DatabaseArgs};
use service_kit::metrics::Registry;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

mod feed;
mod shadow;

use crate::projection::Projection;
use crate::runner::{self, Batch, Positions, RunnerSettings, Write};
use crate::{db, dead_letter};
use feed::{Cut, Feed};
use read_models::checkpoint;
use read_models::status::{dead_letter_counts, rebuild_lock_key};

/// How long the swap transaction may hold the live tables while the rebuild catches up.
const CATCH_UP_UNDER_LOCK: Duration = Duration::from_secs(5);
/// How long the swap waits for the live tables (queries, a live batch) before trying again.
const LOCK_TIMEOUT: &str = "5s";
/// How long asking for a partition's watermarks may take, a leader election included.
const WATERMARKS_WITHIN: Duration = Duration::from_secs(60);
/// How long a poll waits for an event before the rebuild counts itself at the head.
const DRAIN_WAIT: Duration = Duration::from_millis(300);
/// Events per batch of the bulk load: each is one transaction per projection, and the fold
/// keeps one row per aggregate in memory whatever the batch's size.
const BULK_BATCH: usize = 50_000;

/// The gauges of a rebuild's progress on its `/metrics`, per projection: events folded, and
/// events from the start of the log to its head.
pub const PROGRESS_METRICS: [&str; 2] = ["orderstream_rebuild_events_done", "orderstream_rebuild_events_target"];

/// What one rebuild should do.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Move the replaced tables to `<schema>__old_<timestamp>` instead of dropping them.
    pub keep_old: bool,
    /// Print a progress line about every second.
    pub progress: bool,
    /// Where the progress is reported for `/metrics`, about every second too.
    pub metrics: Registry,
}

/// The projection named `name`.
pub fn projection_named(name: &str) -> anyhow::Result<Projection> {
    Projection::ALL.into_iter().find(|p| p.name() == name).with_context(|| {
        let names: Vec<_> = Projection::ALL.iter().map(|p| p.name()).collect();
        format!("unknown projection `{name}`; one of {}", names.join(", "))
    })
}

pub use read_models::status::rebuild_schema;

/// Rebuilds `projections` in one pass over the log, each swapped in as soon as it is done.
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
        .bind(rebuild_lock_key(&live))
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
    drop_schema(&mut guard, &rebuild).await?;
    let rebuild_pool = rebuild_database.pool()?;
    db::migrate(&rebuild_pool, &rebuild).await?;
    let mut shadows = Vec::new();
    for &projection in projections {
        shadows.push(Shadow {
            projection,
            positions: Positions::new(),
            deferred: Some(shadow::prepare(&mut guard, &rebuild, db::tables(projection)).await?),
        });
    }
    let schemas = Schemas {
        live_pool: &live_pool,
        rebuild_pool: &rebuild_pool,
        live: &live,
        rebuild: &rebuild,
    };
    let result = replay(shadows, settings, &schemas, options).await;
    rebuild_pool.close().await;
    if result.is_err() {
        // Best effort: a rebuild started later drops it anyway.
        let _ = drop_schema(&mut guard, &rebuild).await;
    }
    result?;
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

/// The live schema and the rebuild's, with a pool for each.
struct Schemas<'a> {
    live_pool: &'a PgPool,
    rebuild_pool: &'a PgPool,
    live: &'a str,
    rebuild: &'a str,
}

/// A projection being rebuilt: where its rebuild stands in each partition, and while its tables
/// are still shaped for the bulk load, what they will get back before its swap.
struct Shadow {
    projection: Projection,
    positions: Positions,
    deferred: Option<shadow::Deferred>,
}

impl Shadow {
    fn write(&self) -> Write {
        if self.deferred.is_some() {
            Write::Bulk
        } else {
            Write::Ordinary
        }
    }
}

/// What a rebuild that stopped on an error says: the error leaves the live projection as it was.
fn failed(projection: &str) -> String {
    format!("rebuild of {projection} failed; the live projection is untouched")
}

/// Folds one batch into every projection still being rebuilt.
async fn commit_all(shadows: &mut [Shadow], pool: &PgPool, batch: &Batch) -> anyhow::Result<()> {
    for shadow in shadows {
        let write = shadow.write();
        runner::commit_as(shadow.projection, write, pool, &mut shadow.positions, batch)
            .await
            .with_context(|| failed(shadow.projection.name()))?;
    }
    Ok(())
}

/// Reads the log once from its start, folding every batch into each of `shadows`; at the head,
/// swaps them in one after the other, the first of those left after its tables get their indexes.
async fn replay(
    mut shadows: Vec<Shadow>,
    settings: &RunnerSettings,
    schemas: &Schemas<'_>,
    options: &RebuildOptions,
) -> anyhow::Result<()> {
    let Some(first) = shadows.first() else {
        return Ok(());
    };
    // The rebuild schema is new: every projection starts at the beginning of every partition,
    // so one consumer serves them all.
    let (consumer, _) =
        runner::seek_to_checkpoint(first.projection, settings, schemas.rebuild_pool, schemas.rebuild).await?;
    let consumer = Arc::new(consumer);
    let topic = settings.topics.events.clone();
    let count = service_kit::kafka::topics::partition_count(consumer.client(), &topic)? as i32;
    let partitions: Vec<i32> = (0..count).collect();
    let lows =
        service_kit::kafka::topics::offsets_at(&*consumer, &topic, &partitions, Offset::Beginning, WATERMARKS_WITHIN)
            .with_context(|| format!("low watermarks of {topic}"))?;
    let mut highs = high_watermarks(&consumer, &topic, &partitions)?;
    let started = Instant::now();
    let mut last_report = started;
    let label = shadows
        .iter()
        .map(|s| s.projection.name())
        .collect::<Vec<_>>()
        .join(", ");
    let progress = Progress {
        name: &label,
        lows: &lows,
        started,
    };
    if options.progress {
        for shadow in &shadows {
            println!(
                "{}: rebuilding into schema {}",
                shadow.projection.name(),
                schemas.rebuild
            );
        }
    }
    let mut feed = Feed::start(
        Arc::clone(&consumer),
        Cut {
            size: BULK_BATCH.max(settings.batch_size),
            gap: settings.batch_linger,
            first_within: DRAIN_WAIT,
        },
    );
    while !shadows.is_empty() {
        let batch = feed.next().await?;
        let drained = batch.is_empty();
        if !drained {
            commit_all(&mut shadows, schemas.rebuild_pool, &batch).await?;
        }
        feed.recycle(batch);
        // Every projection left has read exactly the batches read so far.
        let positions = &shadows[0].positions;
        if last_report.elapsed() >= Duration::from_secs(1) {
            highs = high_watermarks(&consumer, &topic, &partitions)?;
            last_report = Instant::now();
            for shadow in &shadows {
                progress.report(&options.metrics, shadow.projection, positions, &highs);
            }
            if options.progress {
                println!("{}", progress.line(positions, &highs));
            }
        }
        if drained {
            highs = high_watermarks(&consumer, &topic, &partitions)?;
        }
        let at_head = partitions.iter().all(|&p| position(positions, &lows, p) >= highs[&p]);
        // A poll that found nothing means the head too (a transaction's commit marker takes an
        // offset no record is read at), unless the broker was only slow to answer: the catch-up
        // under the live tables' lock is kept to less than one batch.
        let lag: i64 = partitions
            .iter()
            .map(|&p| highs[&p] - position(positions, &lows, p))
            .sum();
        if !(at_head || drained && lag < BULK_BATCH as i64) {
            continue;
        }
        let name = shadows[0].projection.name();
        if let Some(deferred) = shadows[0].deferred.take() {
            if options.progress {
                println!("{name}: at the head; creating indexes and making the tables logged");
            }
            let finishing = Instant::now();
            shadow::finish(schemas.rebuild_pool, deferred)
                .await
                .with_context(|| failed(name))?;
            if options.progress {
                println!("{name}: tables ready in {:.1}s", finishing.elapsed().as_secs_f64());
            }
            // Catch up with what arrived meanwhile before taking the live tables. When nothing
            // did, the head is where it was found: a poll now would only wait out the drain.
            let found_at = std::mem::replace(&mut highs, high_watermarks(&consumer, &topic, &partitions)?);
            if highs != found_at {
                continue;
            }
        }
        let heads = || high_watermarks(&consumer, &topic, &partitions);
        let swapped = swap(&mut shadows, &mut feed, schemas, options, heads)
            .await
            .with_context(|| failed(name))?;
        match swapped {
            Swap::Done => {
                let done = shadows.remove(0);
                highs = high_watermarks(&consumer, &topic, &partitions)?;
                progress.report(&options.metrics, done.projection, &done.positions, &highs);
                if options.progress {
                    println!("{}", progress.line(&done.positions, &highs));
                    println!("{name}: swapped in after {:.1}s", started.elapsed().as_secs_f64());
                    let dead_letters = dead_letter_counts(schemas.live_pool)
                        .await?
                        .get(name)
                        .copied()
                        .unwrap_or(0);
                    if dead_letters > 0 {
                        println!(
                            "{name}: {dead_letters} dead letters (projectors dead-letters list --projection {name})"
                        );
                    }
                }
            }
            Swap::Retry(why) => {
                if options.progress {
                    println!("{name}: swap postponed ({why}); catching up");
                }
                highs = high_watermarks(&consumer, &topic, &partitions)?;
            }
        }
    }
    Ok(())
}

enum Swap {
    Done,
    Retry(String),
}

/// The take-over of the first of `shadows`, in one transaction on the live schema. Whatever the
/// catch-up reads is folded into every one of `shadows`, which share the consumer; `heads` asks
/// for the log's end in each partition.
async fn swap(
    shadows: &mut [Shadow],
    feed: &mut Feed,
    schemas: &Schemas<'_>,
    options: &RebuildOptions,
    heads: impl Fn() -> anyhow::Result<BTreeMap<i32, i64>>,
) -> anyhow::Result<Swap> {
    let Schemas {
        live_pool,
        rebuild_pool,
        live,
        rebuild,
    } = *schemas;
    let projection = shadows[0].projection;
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
    // create theirs. A live checkpoint past the log's end was read from a log since created
    // again (the live runner refuses to fold on from it): the rebuild is what replaces it. Only
    // a rebuild behind asks for the log's ends, so the usual swap adds no round trip under lock.
    let behind_in = |positions: &Positions, gone: &[i32]| {
        live_checkpoints
            .iter()
            .filter(|(p, _)| !gone.contains(p))
            .any(|(p, live)| positions.get(p).copied().unwrap_or(checkpoint::START) < *live)
    };
    let gone: Vec<i32> = if behind_in(&shadows[0].positions, &[]) {
        let ends = heads()?;
        live_checkpoints
            .iter()
            .filter(|(p, live)| ends.get(p).is_some_and(|end| *live > end))
            .map(|(p, _)| *p)
            .collect()
    } else {
        Vec::new()
    };
    if options.progress && !gone.is_empty() {
        println!(
            "{}: the live checkpoints of partitions {gone:?} stand past the log's end (the log was created again); replacing them",
            projection.name()
        );
    }
    let behind = |positions: &Positions| behind_in(positions, &gone);
    let give_up = Instant::now() + CATCH_UP_UNDER_LOCK;
    while behind(&shadows[0].positions) {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Swap::Retry("still behind the live checkpoint".to_owned()));
        }
        let Ok(batch) = tokio::time::timeout(left, feed.next()).await else {
            continue;
        };
        let batch = batch?;
        if !batch.is_empty() {
            commit_all(shadows, rebuild_pool, &batch).await?;
        }
        feed.recycle(batch);
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

/// The next offset the rebuild reads in `partition`.
fn position(positions: &Positions, lows: &BTreeMap<i32, i64>, partition: i32) -> i64 {
    positions
        .get(&partition)
        .copied()
        .unwrap_or(lows.get(&partition).copied().unwrap_or(0))
}

fn high_watermarks(consumer: &StreamConsumer, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
    service_kit::kafka::topics::offsets_at(consumer, topic, partitions, Offset::End, WATERMARKS_WITHIN)
        .with_context(|| format!("high watermarks of {topic}"))
}

struct Progress<'a> {
    name: &'a str,
    lows: &'a BTreeMap<i32, i64>,
    started: Instant,
}

impl Progress<'_> {
    /// Events folded so far, and events from the start of the log to its head.
    fn counts(&self, positions: &Positions, highs: &BTreeMap<i32, i64>) -> (i64, i64) {
        let total: i64 = highs
            .iter()
            .map(|(p, h)| h - self.lows.get(p).copied().unwrap_or(0))
            .sum();
        let done: i64 = highs
            .keys()
            .map(|&p| position(positions, self.lows, p) - self.lows.get(&p).copied().unwrap_or(0))
            .sum();
        (done, total)
    }

    fn report(&self, metrics: &Registry, projection: Projection, positions: &Positions, highs: &BTreeMap<i32, i64>) {
        let (done, total) = self.counts(positions, highs);
        let labels = &[("projection", projection.name().to_owned())];
        metrics
            .gauge(
                PROGRESS_METRICS[0],
                labels,
                "Events a rebuild under way has folded into the projection's new tables",
            )
            .set(done as f64);
        metrics
            .gauge(
                PROGRESS_METRICS[1],
                labels,
                "Events from the start of the log to its head, as the rebuild last looked",
            )
            .set(total as f64);
    }

    fn line(&self, positions: &Positions, highs: &BTreeMap<i32, i64>) -> String {
        let (done, total) = self.counts(positions, highs);
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
