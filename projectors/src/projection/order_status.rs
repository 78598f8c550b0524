//! `order_status`: one row per order as of its latest event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::order::{self, OrderStatus};
use domain::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use super::LoggedEvent;

/// An order's row as the batch leaves it.
#[derive(Debug, Clone)]
struct OrderRow<'a> {
    name: &'a str,
    note: Option<&'a str>,
    status: OrderStatus,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

fn fold(events: &[LoggedEvent]) -> HashMap<Uuid, OrderRow<'_>> {
    let mut rows = HashMap::new();
    for event in events {
        let version = event.envelope.sequence.unwrap_or(1) as i64;
        match &event.envelope.message {
            Event::Order(order::Event::OrderPlaced(placed)) => {
                rows.insert(
                    placed.order_id,
                    OrderRow {
                        name: placed.name.as_str(),
                        note: placed.note.as_ref().map(|n| n.as_str()),
                        status: OrderStatus::Pending,
                        placed_at: placed.placed_at,
                        updated_at: placed.placed_at,
                        version,
                    },
                );
            }
            // Other aggregates share the log; they are not orders.
            Event::Purchase(_) => {}
        }
    }
    rows
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let rows = fold(events);
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut names = Vec::with_capacity(rows.len());
    let mut notes = Vec::with_capacity(rows.len());
    let mut statuses = Vec::with_capacity(rows.len());
    let mut placed = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    for (order_id, row) in rows {
        ids.push(order_id);
        names.push(row.name);
        notes.push(row.note);
        statuses.push(row.status.as_str());
        placed.push(row.placed_at);
        updated.push(row.updated_at);
        versions.push(row.version);
    }
    // The version guard keeps an older event from overwriting a newer row.
    sqlx::query(
        "INSERT INTO order_status (order_id, name, note, status, placed_at, updated_at, version) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
                              $6::timestamptz[], $7::bigint[]) \
         ON CONFLICT (order_id) DO UPDATE SET \
           name = EXCLUDED.name, note = EXCLUDED.note, status = EXCLUDED.status, \
           placed_at = EXCLUDED.placed_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version \
         WHERE order_status.version < EXCLUDED.version",
    )
    .bind(ids)
    .bind(names)
    .bind(notes)
    .bind(statuses)
    .bind(placed)
    .bind(updated)
    .bind(versions)
    .execute(tx)
    .await?;
    Ok(())
}
