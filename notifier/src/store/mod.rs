//! Every SQL statement of the notifier, over the tables of the `0007_webhooks` migration of the
//! read-model schema (so each deployment keeps one migration history).
//!
//! - [`webhooks`]: registering, reading and deleting a webhook, always `WHERE owner = $sub`.
//! - [`deliveries`]: the fan-out insert, the dispatcher's lease, release and outcomes, and the
//!   owner's listing.

pub mod deliveries;
pub mod webhooks;

use sqlx::PgPool;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] read_models::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Creates `schema` if needed and applies the read-model migrations, the webhook tables among
/// them.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<()> {
    Ok(read_models::schema::migrate(pool, schema).await?)
}
