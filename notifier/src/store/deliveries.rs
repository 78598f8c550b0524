//! The `webhook_deliveries` table: written by the fan-out, leased and updated by the
//! dispatchers, listed by the webhook's owner.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::Result;
use crate::notification::Notification;
use crate::retry::Verdict;
use crate::signature::WebhookSecret;

/// An event to fan out: its `ce_id` and what webhooks are told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fanned {
    pub event_id: Uuid,
    pub notification: Notification,
}

/// In one transaction: records the owners the events create, then inserts one delivery per
/// webhook that matches an event (same owner, subscribed to its type, created before it
/// happened). An event seen again (a redelivery, another replica) inserts nothing: the unique
/// key `(webhook_id, event_id)` has it already. Returns the deliveries inserted.
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub async fn fan_out(pool: &PgPool, events: &[Fanned]) -> Result<u64> {
    let mut owners = (Vec::new(), Vec::new());
    let mut columns = FanOutColumns::default();
    for Fanned { event_id, notification } in events {
        if let (true, Some(owner)) = (notification.creates_owner, notification.owner) {
            owners.0.push(notification.aggregate_id);
            owners.1.push(owner);
        }
        columns.event_ids.push(*event_id);
        columns.types.push(notification.event_type.to_owned());
        columns.aggregates.push(notification.aggregate_id);
        columns.owners.push(notification.owner);
        columns.times.push(notification.occurred_at);
        columns.payloads.push(notification.data.to_string());
    }
    let mut transaction = pool.begin().await?;
    if !owners.0.is_empty() {
        sqlx::query(
            "INSERT INTO webhook_owners (aggregate_id, owner)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[])
             ON CONFLICT (aggregate_id) DO NOTHING",
        )
        .bind(&owners.0)
        .bind(&owners.1)
        .execute(&mut *transaction)
        .await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, occurred_at, payload)
         SELECT w.webhook_id, e.event_id, e.event_type, e.occurred_at, e.payload::jsonb
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[])
              AS e(event_id, event_type, aggregate_id, owner, occurred_at, payload)
         LEFT JOIN webhook_owners o ON o.aggregate_id = e.aggregate_id
         JOIN webhooks w ON w.owner = COALESCE(e.owner, o.owner)
                        AND e.event_type = ANY (w.events)
                        AND w.created_at <= e.occurred_at
         ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )
    .bind(&columns.event_ids)
    .bind(&columns.types)
    .bind(&columns.aggregates)
    .bind(&columns.owners)
    .bind(&columns.times)
    .bind(&columns.payloads)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    transaction.commit().await?;
    Ok(inserted)
}

#[derive(Default)]
struct FanOutColumns {
    event_ids: Vec<Uuid>,
    types: Vec<String>,
    aggregates: Vec<Uuid>,
    owners: Vec<Option<Uuid>>,
    times: Vec<DateTime<Utc>>,
    payloads: Vec<String>,
}

/// A delivery leased for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery_id: i64,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// The public view, as JSON text.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
    pub url: String,
    pub secret: WebhookSecret,
}

#[derive(sqlx::FromRow)]
struct LeasedRow {
    delivery_id: i64,
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: String,
    occurred_at: DateTime<Utc>,
    payload: String,
    attempts: i32,
    url: String,
    secret: Vec<u8>,
}

/// Leases up to `limit` due deliveries, oldest due first, and at most `room` of each webhook,
/// where `room` is `share` less the deliveries of it `held` here already: moves their next
/// attempt `lease` ahead, so no other dispatcher takes them meanwhile, and one that dies holding
/// them only delays them until the lease runs out.
///
/// The oldest due rows are locked first (`FOR UPDATE SKIP LOCKED`, so dispatchers lease side by
/// side without waiting for each other), a window a few times `limit` wide, and the share of
/// each webhook is taken from those: one webhook with a long backlog cannot fill a lease.
#[tracing::instrument(skip(pool, held), fields(held = held.len()))]
pub async fn lease(
    pool: &PgPool,
    limit: usize,
    share: usize,
    lease: Duration,
    held: &HashMap<Uuid, usize>,
) -> Result<Vec<Leased>> {
    let (busy, counts): (Vec<Uuid>, Vec<i64>) = held.iter().map(|(id, n)| (*id, *n as i64)).unzip();
    let full: Vec<Uuid> = held.iter().filter(|(_, n)| **n >= share).map(|(id, _)| *id).collect();
    let window = limit.max(16) * 4;
    let mut transaction = unsynchronised(pool).await?;
    // The lease must walk the due index in order and stop at the window. On a table whose
    // statistics predate a burst of new deliveries, the planner expects a handful of due rows and
    // picks a bitmap scan that sorts the whole backlog instead: milliseconds per lease, growing
    // with the backlog.
    sqlx::query("SET LOCAL enable_bitmapscan = off")
        .execute(&mut *transaction)
        .await?;
    let rows: Vec<LeasedRow> = sqlx::query_as(
        "WITH candidates AS (
             SELECT delivery_id, webhook_id, next_attempt_at FROM webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (webhook_id = ANY ($3))
             ORDER BY next_attempt_at
             LIMIT $4
             FOR UPDATE SKIP LOCKED
         ), ranked AS (
             SELECT c.delivery_id, c.next_attempt_at,
                    row_number() OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt_at) AS rank,
                    $5 - COALESCE(f.n, 0) AS room
             FROM candidates c
             LEFT JOIN UNNEST($6::uuid[], $7::bigint[]) AS f(webhook_id, n) USING (webhook_id)
         ), due AS (
             SELECT delivery_id, next_attempt_at FROM ranked
             WHERE rank <= room
             ORDER BY next_attempt_at
             LIMIT $1
         )
         UPDATE webhook_deliveries d
         SET next_attempt_at = now() + $2 * interval '1 millisecond'
         FROM due, webhooks w
         WHERE d.delivery_id = due.delivery_id AND w.webhook_id = d.webhook_id
         RETURNING d.delivery_id, d.webhook_id, d.event_id, d.event_type, d.occurred_at,
                   d.payload::text AS payload, d.attempts, w.url, w.secret",
    )
    .bind(limit as i64)
    .bind(millis(lease))
    .bind(&full)
    .bind(window as i64)
    .bind(share as i64)
    .bind(&busy)
    .bind(&counts)
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(Leased {
                // The table's CHECK keeps every key 32 bytes long.
                secret: WebhookSecret::from_bytes(&row.secret)?,
                delivery_id: row.delivery_id,
                webhook_id: row.webhook_id,
                event_id: row.event_id,
                event_type: row.event_type,
                occurred_at: row.occurred_at,
                payload: row.payload,
                attempts: row.attempts,
                url: row.url,
            })
        })
        .collect())
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivery_id: i64,
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// For [`Verdict::Retry`]: how long until the next attempt.
    pub retry_in: Duration,
}

/// Records attempts' outcomes in one statement: each counts an attempt; a retry whose next
/// attempt would fall beyond `horizon` from the delivery's creation fails instead.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn record(pool: &PgPool, outcomes: &[Outcome], horizon: Duration) -> Result<()> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
    let verdicts: Vec<&str> = outcomes.iter().map(|o| o.verdict.as_str()).collect();
    let statuses: Vec<Option<i32>> = outcomes.iter().map(|o| o.http_status.map(i32::from)).collect();
    let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
    let delays: Vec<i64> = outcomes.iter().map(|o| millis(o.retry_in)).collect();
    let mut transaction = unsynchronised(pool).await?;
    sqlx::query(
        "UPDATE webhook_deliveries d
         SET attempts = d.attempts + 1,
             last_status = o.http_status,
             last_error = o.error,
             status = CASE
                 WHEN o.verdict = 'pending'
                      AND now() + o.delay_ms * interval '1 millisecond'
                          > d.created_at + $6 * interval '1 millisecond' THEN 'failed'
                 ELSE o.verdict END,
             next_attempt_at = CASE WHEN o.verdict = 'pending'
                 THEN now() + o.delay_ms * interval '1 millisecond' ELSE d.next_attempt_at END,
             delivered_at = CASE WHEN o.verdict = 'delivered' THEN now() END
         FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[])
              AS o(delivery_id, verdict, http_status, error, delay_ms)
         WHERE d.delivery_id = o.delivery_id AND d.status = 'pending'",
    )
    .bind(&ids)
    .bind(&verdicts)
    .bind(&statuses)
    .bind(&errors)
    .bind(&delays)
    .bind(millis(horizon))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// A transaction whose commit does not wait for the WAL to reach the disk. Only for the
/// dispatcher's leases and outcomes: what a database crash can lose of them is a lease (the
/// delivery is due again) or an outcome (the delivery is sent again), both within the
/// at-least-once promise, and receivers recognise a resent message by its `webhook-id`. The
/// fan-out's transactions stay synchronous: Kafka offsets are committed after them.
async fn unsynchronised(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

/// A delivery as the webhook's owner reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub delivery_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_http_status: Option<i32>,
    pub last_error: Option<String>,
    /// When a pending delivery is next attempted.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Up to `limit` deliveries of the owner's webhook with ids above `after`, in id order.
#[tracing::instrument(skip(pool))]
pub async fn list(pool: &PgPool, owner: Uuid, webhook_id: Uuid, after: i64, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "SELECT d.delivery_id, d.event_id, d.event_type, d.status, d.attempts,
                d.last_status AS last_http_status, d.last_error,
                CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
                d.created_at, d.delivered_at
         FROM webhook_deliveries d JOIN webhooks w USING (webhook_id)
         WHERE d.webhook_id = $1 AND w.owner = $2 AND d.delivery_id > $3
         ORDER BY d.delivery_id
         LIMIT $4",
    )
    .bind(webhook_id)
    .bind(owner)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
