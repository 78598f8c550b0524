//! `track_user`: per customer name, how many orders were placed under it and when the first was.
//! Names compare bytewise (`COLLATE "C"`), so pages by name are in the same order on every server.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::row::{self, table_row};

table_row! {
    /// One customer name's counter.
    pub struct TrackUserRow in "track_user" {
        /// A UUID v5 of the name, so every replay assigns the same id.
        id: Uuid as "uuid",
        name: String as "text",
        /// Orders placed under the name.
        counter: i64 as "bigint",
        /// When the first of them was placed (event time).
        created_at: DateTime<Utc> as "timestamptz",
    }
}

/// Adds each row's `counter` to its name's, keeping the earlier `created_at`.
///
/// Orders of one name are spread over partitions, so a batch may hold a name's earlier order
/// after a later one has been counted: LEAST keeps the first.
pub async fn add(tx: &mut PgConnection, rows: Vec<TrackUserRow>) -> Result<(), sqlx::Error> {
    row::write_batch(
        tx,
        rows,
        "ON CONFLICT (name) DO UPDATE SET \
           counter = track_user.counter + EXCLUDED.counter, \
           created_at = LEAST(track_user.created_at, EXCLUDED.created_at)",
    )
    .await
}

/// The counter of exactly `name`.
pub async fn by_name(pool: &PgPool, name: &str) -> Result<Option<TrackUserRow>, sqlx::Error> {
    row::by_text(pool, "name", name).await
}

/// Up to `limit` names after `after` (bytewise), in name order.
pub async fn page(pool: &PgPool, after: Option<&str>, limit: i64) -> Result<Vec<TrackUserRow>, sqlx::Error> {
    row::page_by_text(pool, "name", after, limit).await
}
