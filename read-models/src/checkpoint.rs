//! `projection_checkpoint`: the next offset to read per projection and events partition,
//! written in the same transaction as the rows it accounts for.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgExecutor};

/// The next offset per partition `projection` has recorded.
pub async fn checkpoints(db: impl PgExecutor<'_>, projection: &str) -> Result<BTreeMap<i32, i64>, sqlx::Error> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM projection_checkpoint WHERE projection = $1")
            .bind(projection)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
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
