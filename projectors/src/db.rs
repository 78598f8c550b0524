//! Migrations, checkpoints, and which tables each projection owns.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};
use thiserror::Error;

use crate::projection::Projection;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("schema name `{0}` must be lowercase letters, digits and underscores")]
    InvalidSchema(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Creates `schema` if needed and applies the migrations inside it.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<(), DbError> {
    check_schema(schema)?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(pool)
        .await?;
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Schema names are spliced into SQL (quoted), so only these characters are accepted.
pub fn check_schema(schema: &str) -> Result<(), DbError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(DbError::InvalidSchema(schema.to_owned()))
    }
}

/// The tables `projection` writes, in the order every transaction locks them (a live batch,
/// a rebuild's swap). Each table belongs to exactly one projection.
pub fn tables(projection: Projection) -> &'static [&'static str] {
    match projection {
        Projection::TrackUser => &["track_user"],
        Projection::OrderStatus => &["order_status"],
        Projection::OrderHistory => &["order_history"],
        Projection::Purchases => &["purchases", "user_spend"],
    }
}

/// The next offset per partition `projection` has recorded.
pub async fn checkpoints(pool: &PgPool, projection: &str) -> Result<BTreeMap<i32, i64>, sqlx::Error> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, next_offset FROM projection_checkpoint WHERE projection = $1")
            .bind(projection)
            .fetch_all(pool)
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
