//! Where every projection stands: its checkpoint and lag in each partition against the log ends
//! the caller read off Kafka, its dead letters, and a rebuild with how far it has come. The one
//! gathering behind `projectors status` and query-api's console.
//!
//! A rebuild folds into the sibling schema [`rebuild_schema`] with its own checkpoint table,
//! written with every batch it folds: those checkpoints are its progress. It holds a
//! session-level advisory lock for its whole run; [`rebuild_running`] looks for that lock in
//! `pg_locks` rather than trying to take it, so asking never stands in a rebuild's way.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::schema::check_schema;
use crate::Result;

/// The schema a rebuild of `live` builds into.
pub fn rebuild_schema(live: &str) -> String {
    format!("{live}__rebuild")
}

/// The advisory lock a rebuild of `live` holds for its whole run, keyed by `hashtext` of this.
pub fn rebuild_lock_key(live: &str) -> String {
    format!("orderstream-rebuild:{live}")
}

/// Whether a rebuild of `live` holds its advisory lock right now. A one-key advisory lock shows
/// in `pg_locks` with the key's high half as `classid`, its low half as `objid` and `objsubid` 1.
pub async fn rebuild_running(pool: &PgPool, live: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint)",
    )
    .bind(rebuild_lock_key(live))
    .fetch_one(pool)
    .await
}

/// Every projection's status, and the rebuild's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub projections: Vec<ProjectionStatus>,
    pub rebuild: RebuildState,
    /// The rebuild schema, whether or not there is one now.
    pub rebuild_schema: String,
}

impl Status {
    /// `(partition, next offset)` of every partition some projection is behind in by the
    /// offsets: the positions to ask Kafka about (`service_kit::kafka::watch::holding_records`).
    pub fn behind(&self) -> BTreeSet<(i32, i64)> {
        self.projections
            .iter()
            .flat_map(|projection| &projection.partitions)
            .filter(|partition| partition.lag > 0)
            .map(|partition| (partition.partition, partition.next_offset.unwrap_or(0)))
            .collect()
    }

    /// Puts the lag at 0 where only transaction commit markers follow the checkpoint: every
    /// position of [`Status::behind`] that is not in `holding`.
    pub fn settle(&mut self, holding: &BTreeSet<(i32, i64)>) {
        for projection in &mut self.projections {
            for partition in &mut projection.partitions {
                let position = (partition.partition, partition.next_offset.unwrap_or(0));
                if partition.lag > 0 && !holding.contains(&position) {
                    partition.lag = 0;
                }
            }
            projection.lag = projection.partitions.iter().map(|p| p.lag).sum();
        }
    }
}

/// Where one projection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    /// Offsets of the log past the projection's checkpoints, over every partition. While behind
    /// it counts transaction commit markers too; at the head it is 0 once [`Status::settle`]d.
    pub lag: i64,
    pub dead_letters: i64,
    pub partitions: Vec<PartitionLag>,
    /// How far a rebuild of this projection has come, while its schema holds one.
    pub rebuilt: Option<Progress>,
}

/// One partition of one projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The checkpoint: the next offset the projection applies; `None` before it claimed the
    /// partition (it then starts at the beginning).
    pub next_offset: Option<i64>,
    pub log_end: i64,
    pub lag: i64,
}

impl PartitionLag {
    /// Whether the checkpoint stands past the log's end: the events topic was created again or
    /// lost records, and only a rebuild matches the read models to it again.
    pub fn past_log_end(&self) -> bool {
        self.next_offset.is_some_and(|next| next > self.log_end)
    }
}

/// Events a rebuild has folded of those in the log now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
}

/// What the rebuild schema and the rebuild lock say together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildState {
    None,
    /// Holds the lock, has not folded a batch yet.
    Starting,
    Running,
    /// A schema left by a rebuild that stopped; the next rebuild drops it.
    Interrupted,
}

/// The status of `projections` and of every other projection with checkpoints in the `live`
/// schema, against `log_ends`, the events topic's end per partition.
pub async fn gather(pool: &PgPool, live: &str, projections: &[&str], log_ends: &BTreeMap<i32, i64>) -> Result<Status> {
    check_schema(live)?;
    let rebuild = rebuild_schema(live);
    let running = rebuild_running(pool, live).await?;
    let checkpoints = all_checkpoints(pool, live).await?;
    let rebuilding = all_checkpoints(pool, &rebuild).await?;
    let dead_letters = dead_letter_counts(pool).await?;
    let mut names: Vec<&str> = projections.to_vec();
    names.extend(
        checkpoints
            .keys()
            .map(String::as_str)
            .filter(|name| !projections.contains(name)),
    );
    let log_total: i64 = log_ends.values().sum();
    let projections = names
        .into_iter()
        .map(|name| {
            let stored = checkpoints.get(name);
            let partitions: Vec<PartitionLag> = log_ends
                .iter()
                .map(|(&partition, &log_end)| {
                    let next_offset = stored.and_then(|offsets| offsets.get(&partition)).copied();
                    PartitionLag {
                        partition,
                        next_offset,
                        log_end,
                        lag: (log_end - next_offset.unwrap_or(0)).max(0),
                    }
                })
                .collect();
            ProjectionStatus {
                name: name.to_owned(),
                lag: partitions.iter().map(|p| p.lag).sum(),
                dead_letters: dead_letters.get(name).copied().unwrap_or(0),
                partitions,
                rebuilt: rebuilding.get(name).map(|offsets| Progress {
                    done: offsets.values().sum::<i64>().min(log_total),
                    total: log_total,
                }),
            }
        })
        .collect();
    let rebuild_state = match (running, rebuilding.is_empty()) {
        (true, true) => RebuildState::Starting,
        (true, false) => RebuildState::Running,
        (false, false) => RebuildState::Interrupted,
        (false, true) => RebuildState::None,
    };
    Ok(Status {
        projections,
        rebuild: rebuild_state,
        rebuild_schema: rebuild,
    })
}

/// How many dead letters each projection has; projections without any are absent.
pub async fn dead_letter_counts(pool: &PgPool) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT projection, count(*) FROM dead_letters GROUP BY projection")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

/// A dead letter as an operator first sees it, without the record itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeadLetterSummary {
    pub id: i64,
    pub projection: String,
    pub partition: i32,
    pub offset: i64,
    pub event_type: Option<String>,
    pub error: String,
    pub dead_lettered_at: DateTime<Utc>,
}

/// The latest `limit` dead letters, newest first.
pub async fn latest_dead_letters(pool: &PgPool, limit: i64) -> Result<Vec<DeadLetterSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, projection, partition, \"offset\", event_type, error, dead_lettered_at \
         FROM dead_letters ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The checkpoints of `schema` per projection and partition; none when it has no checkpoint
/// table (a rebuild schema that does not exist).
async fn all_checkpoints(pool: &PgPool, schema: &str) -> Result<BTreeMap<String, BTreeMap<i32, i64>>> {
    check_schema(schema)?;
    let table = format!("\"{schema}\".projection_checkpoint");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as(&format!("SELECT projection, partition, next_offset FROM {table}"))
            .fetch_all(pool)
            .await?;
    let mut checkpoints: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for (projection, partition, next) in rows {
        checkpoints.entry(projection).or_default().insert(partition, next);
    }
    Ok(checkpoints)
}
