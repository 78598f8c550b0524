//! orderstream's read models: the PostgreSQL schema the projectors keep and the query API reads,
//! and for each table its row type and its SQL, in one place for both sides.
//!
//! A row is declared once with `table_row!`: the struct, its columns and their PostgreSQL types,
//! from which come the `SELECT` lists and the one-statement `UNNEST` batch writes, so
//! adding a column is one line beside its migration. A row that is one aggregate's latest state
//! is declared `keyed by` the aggregate's id and is a [`LatestRow`], which the projections load and
//! fold alike.
//!
//! - [`schema`]: the migrations (`read-models/migrations/`), applied inside a named schema.
//! - [`checkpoint`]: `projection_checkpoint`, the next offset per projection and partition,
//!   written with the rows it accounts for and read by consistency-token waits.
//! - [`track_user`]: per customer name, the order count and the time of the first order.
//! - [`order_status`]: per order, its latest state; the filtered, newest-first listing.
//! - [`order_history`]: per order, every event in its own order.
//! - [`purchases`]: `purchases` (per purchase, its latest state) and `user_spend` (per user and
//!   currency, the totals requested, authorized and refunded).
//! - [`products`]: per product of the catalog, its latest state and stock; the listing by SKU.
//! - [`status`]: each projection's checkpoints, lag, dead letters and rebuild progress, for
//!   `projectors status` and query-api's console.
//!
//! `dead_letters`, the records a projection set aside, is part of the schema too; the projectors
//! write it, and [`status`] counts and lists it.

mod row;

pub use row::LatestRow;

pub mod checkpoint;
pub mod order_history;
pub mod order_status;
pub mod products;
pub mod purchases;
pub mod schema;
pub mod status;
pub mod track_user;

use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum Error {
    #[error("schema name `{0}` must be 1 to 63 lowercase letters, digits and underscores")]
    InvalidSchema(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a newest-first keyset page ended: its last row's `(time, id)`, the listing's sort key,
/// so the next page starts right after it however many rows arrive meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}
