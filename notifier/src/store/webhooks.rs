//! The `webhooks` table: each row belongs to the user whose token registered it, and every
//! statement here names that owner, so another user's webhook is simply not found.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::Result;
use crate::signature::WebhookSecret;

/// A registration as its owner sent it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A webhook as its owner reads it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Webhook {
    pub webhook_id: Uuid,
    pub url: String,
    /// Among the names the registration takes.
    pub events: Vec<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "webhook_id, url, events, description, created_at";

/// The first key of the advisory locks that make one owner's registrations take turns.
const REGISTRATIONS_LOCK: i32 = 0x7768_6b73;

/// Stores `webhook` for `owner`, unless the owner already has `limit` webhooks: `None` then,
/// and nothing is stored. One owner's registrations take turns (an advisory lock on the owner
/// for the transaction), so two at once cannot both pass the count.
#[tracing::instrument(skip(pool, webhook, secret), fields(%owner))]
pub async fn insert(
    pool: &PgPool,
    owner: Uuid,
    webhook_id: Uuid,
    webhook: &NewWebhook,
    secret: &WebhookSecret,
    limit: u32,
) -> Result<Option<Webhook>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(REGISTRATIONS_LOCK)
        // Owners whose ids share these bits only take turns with each other.
        .bind(owner.as_u64_pair().1 as i32)
        .execute(&mut *tx)
        .await?;
    let sql = format!(
        "INSERT INTO webhooks (webhook_id, owner, url, events, description, secret)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE (SELECT count(*) FROM webhooks WHERE owner = $2) < $7
         RETURNING {COLUMNS}"
    );
    let stored = sqlx::query_as(&sql)
        .bind(webhook_id)
        .bind(owner)
        .bind(&webhook.url)
        .bind(&webhook.events)
        .bind(&webhook.description)
        .bind(secret.as_bytes())
        .bind(i64::from(limit))
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Every webhook of `owner`, oldest first.
#[tracing::instrument(skip(pool))]
pub async fn list(pool: &PgPool, owner: Uuid) -> Result<Vec<Webhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE owner = $1 ORDER BY created_at, webhook_id");
    Ok(sqlx::query_as(&sql).bind(owner).fetch_all(pool).await?)
}

#[tracing::instrument(skip(pool))]
pub async fn find(pool: &PgPool, owner: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE webhook_id = $1 AND owner = $2");
    Ok(sqlx::query_as(&sql)
        .bind(webhook_id)
        .bind(owner)
        .fetch_optional(pool)
        .await?)
}

/// Deletes the webhook and, by cascade, its deliveries; `false` when the owner has no such
/// webhook.
#[tracing::instrument(skip(pool))]
pub async fn delete(pool: &PgPool, owner: Uuid, webhook_id: Uuid) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1 AND owner = $2")
        .bind(webhook_id)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}
