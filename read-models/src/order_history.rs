//! `order_history`: every event of every order, one row each, keyed by the order and the event's
//! `ce_sequence`, so an order's timeline reads back in the order its events were decided.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::row::{self, table_row};

table_row! {
    /// One event of one order.
    pub struct HistoryRow in "order_history" {
        order_id: Uuid as "uuid",
        /// The event's `ce_sequence`.
        version: i64 as "bigint",
        /// The `ce_type`, e.g. `orderstream.order.shipped.v1`.
        event_type: String as "text",
        /// The event's own time, not when the projector saw it, so a replay writes the same rows.
        occurred_at: DateTime<Utc> as "timestamptz",
        /// The event as it is encoded on the log, as JSON text: PostgreSQL parses it into
        /// `jsonb` on the way in, and it is read back as text, never decoded on the way.
        data: String as "jsonb",
        /// The events partition and offset the event was read at.
        log_partition: Option<i32> as "int",
        log_offset: Option<i64> as "bigint",
        /// The command that decided it (`ce_causationid`).
        command_id: Option<Uuid> as "uuid",
        /// The trace id of its `traceparent`: 32 lowercase hex digits.
        trace_id: Option<String> as "text",
    }
}

/// Inserts the rows with one statement. Rows are only ever inserted: an event is a fact and its
/// row never changes. One already present (a rebuild over a table that was not emptied) is left
/// as it is, since the same position of the same order always holds the same event.
pub async fn insert(tx: &mut PgConnection, rows: Vec<HistoryRow>) -> Result<(), sqlx::Error> {
    row::write_batch(tx, rows, "ON CONFLICT (order_id, version) DO NOTHING").await
}

/// Inserts the rows with one `COPY`: the bulk load of a rebuild, into a table that holds none of
/// them. A row already present fails the whole copy, where [`insert`] would leave it.
pub async fn copy(tx: &mut PgConnection, rows: &[HistoryRow]) -> Result<(), sqlx::Error> {
    row::copy_batch(tx, rows).await
}

/// Every event of `order_id`, oldest first; none unless `owner` (when given) owns the order.
///
/// The owner is read from the order's own first event (`OrderPlaced`, version 1) in the same
/// table, so the check never waits on another projection; rows projected before orders had a
/// top-level `user_id` hold it in their details.
pub async fn timeline(pool: &PgPool, order_id: Uuid, owner: Option<Uuid>) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, version, event_type, occurred_at, data::text AS data, \
                log_partition, log_offset, command_id, trace_id FROM order_history \
         WHERE order_id = $1 \
           AND ($2::uuid IS NULL OR EXISTS ( \
               SELECT 1 FROM order_history placed \
               WHERE placed.order_id = $1 AND placed.version = 1 \
                 AND COALESCE(placed.data ->> 'user_id', placed.data #>> '{details,user_id}') = $2::text)) \
         ORDER BY version",
    )
    .bind(order_id)
    .bind(owner)
    .fetch_all(pool)
    .await
}
