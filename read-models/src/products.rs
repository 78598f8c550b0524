//! `products`: one row per product of the catalog as of its latest event: what it is called and
//! costs, and its stock on hand with the part of it held for orders.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::row::{self, table_row};

table_row! {
    /// A product's row. The price is integer minor units of `currency`.
    pub struct ProductRow in "products" keyed by product_id {
        product_id: Uuid as "uuid",
        sku: String as "text",
        name: String as "text",
        description: Option<String> as "text",
        price_minor: i64 as "bigint",
        currency: String as "text",
        on_hand: i64 as "bigint",
        /// The part of `on_hand` held for orders.
        reserved: i64 as "bigint",
        /// The `ce_sequence` of the last event applied.
        version: i64 as "bigint",
        defined_at: DateTime<Utc> as "timestamptz",
        updated_at: DateTime<Utc> as "timestamptz",
    }
}

/// Writes every row with one statement. Each row is the product's whole state, so a conflict
/// replaces every column; the version guard keeps an older event from overwriting a newer row.
pub async fn upsert(tx: &mut PgConnection, rows: Vec<ProductRow>) -> Result<(), sqlx::Error> {
    let on_conflict = format!(
        "ON CONFLICT (product_id) DO UPDATE SET {} WHERE products.version < EXCLUDED.version",
        row::replace_all::<ProductRow>("product_id")
    );
    row::write_batch(tx, rows, &on_conflict).await
}

/// The product sold under `sku`. The catalog is not per-user data: anyone who may read it reads
/// every product.
pub async fn by_sku(pool: &PgPool, sku: &str) -> Result<Option<ProductRow>, sqlx::Error> {
    row::by_text(pool, "sku", sku).await
}

/// Up to `limit` products whose SKU sorts (bytewise) after `after`, by SKU.
pub async fn page(pool: &PgPool, after: Option<&str>, limit: i64) -> Result<Vec<ProductRow>, sqlx::Error> {
    row::page_by_text(pool, "sku", after, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_replaces_every_column_but_the_key_unless_the_row_is_newer() {
        row::tests::assert_whole_row_batch::<ProductRow>(
            "product_id, sku, name, description, price_minor,",
            "$1::uuid[], $2::text[]",
            "$11::timestamptz[]",
            "product_id",
            10,
        );
    }
}
