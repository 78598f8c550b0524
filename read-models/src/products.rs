//! `products`: one row per product of the catalog as of its latest event: what it is called and
//! costs, and its stock on hand with the part of it held for orders.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::row::{self, table_row};

table_row! {
    /// A product's row. The price is integer minor units of `currency`.
    pub struct ProductRow in "products" {
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

/// The stored rows of `ids`; those without one are left out.
pub async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
    row::load(tx, "product_id", ids).await
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
        let sql = row::batch_sql::<ProductRow>("");
        assert!(sql.starts_with("INSERT INTO products (product_id, sku, name, description, price_minor,"));
        assert!(sql.contains("$1::uuid[], $2::text[]"));
        assert!(sql.contains("$11::timestamptz[])"));
        let replace = row::replace_all::<ProductRow>("product_id");
        assert_eq!(replace.matches("= EXCLUDED.").count(), 10);
        assert!(!replace.contains("product_id"));
    }
}
