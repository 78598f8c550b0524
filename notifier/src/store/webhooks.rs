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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Webhook {
    pub webhook_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "webhook_id, url, events, description, created_at";

#[tracing::instrument(skip(pool, webhook, secret), fields(%owner))]
pub async fn insert(
    pool: &PgPool,
    owner: Uuid,
    webhook_id: Uuid,
    webhook: &NewWebhook,
    secret: &WebhookSecret,
) -> Result<Webhook> {
    let sql = format!(
        "INSERT INTO webhooks (webhook_id, owner, url, events, description, secret)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(webhook_id)
        .bind(owner)
        .bind(&webhook.url)
        .bind(&webhook.events)
        .bind(&webhook.description)
        .bind(secret.as_bytes())
        .fetch_one(pool)
        .await?)
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
