//! `projection_checkpoint`: the next offset to read per projection and events partition,
//! written in the same transaction as the rows it accounts for.
//!
//! A live projector claims a partition's row (creating it at the start of the log when absent)
//! before it folds any record of that partition, and each batch locks the row and checks it is
//! still where the projector left it: the row is the fence between two processes that both
//! believe they own the partition.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgExecutor, PgPool};

/// The offset a checkpoint row starts at: the beginning of the partition.
pub const START: i64 = 0;

/// The next offset per partition `projection` has recorded.
pub async fn checkpoints(db: impl PgExecutor<'_>, projection: &str) -> Result<BTreeMap<i32, i64>, sqlx::Error> {
    sqlx::query_as("SELECT partition, next_offset FROM projection_checkpoint WHERE projection = $1")
        .bind(projection)
        .fetch_all(db)
        .await
        .map(BTreeMap::from_iter)
}

/// Makes sure `projection` has a checkpoint row for each of `partitions` (at [`START`] when it
/// has none yet) and returns their stored next offsets: where a new owner starts folding.
pub async fn claim(pool: &PgPool, projection: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoint (projection, partition, next_offset) \
         SELECT $1, partition, $3 FROM UNNEST($2::int[]) AS partition \
         ON CONFLICT (projection, partition) DO NOTHING",
    )
    .bind(projection)
    .bind(partitions)
    .bind(START)
    .execute(pool)
    .await?;
    sqlx::query_as(
        "SELECT partition, next_offset FROM projection_checkpoint WHERE projection = $1 AND partition = ANY($2)",
    )
    .bind(projection)
    .bind(partitions)
    .fetch_all(pool)
    .await
    .map(BTreeMap::from_iter)
}

/// Records the next offsets of `projection`, inside the caller's transaction.
pub async fn save_checkpoints(
    tx: &mut PgConnection,
    projection: &str,
    next_offsets: &BTreeMap<i32, i64>,
) -> Result<(), sqlx::Error> {
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = next_offsets.iter().map(|(p, o)| (*p, *o)).unzip();
    sqlx::query(
        "INSERT INTO projection_checkpoint (projection, partition, next_offset) \
         SELECT $1, * FROM UNNEST($2::int[], $3::bigint[]) \
         ON CONFLICT (projection, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
    )
    .bind(projection)
    .bind(partitions)
    .bind(offsets)
    .execute(tx)
    .await?;
    Ok(())
}

/// The next offset of every projection in `partition`.
pub async fn in_partition(pool: &PgPool, partition: i32) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    sqlx::query_as("SELECT projection, next_offset FROM projection_checkpoint WHERE partition = $1")
        .bind(partition)
        .fetch_all(pool)
        .await
        .map(BTreeMap::from_iter)
}
