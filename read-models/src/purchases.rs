//! `purchases` and `user_spend`: one row per purchase as of its latest event, and per user and
//! currency the count of purchases requested and the sums authorized and refunded.
//!
//! Only what may be stored of a card is here (brand, last four, expiry, fingerprint): the events
//! never carry the number or the CVC, and neither does any column.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::row::{self, table_row};
use crate::Keyset;

table_row! {
    /// A purchase's row. Amounts are integer minor units of `currency`.
    pub struct PurchaseRow in "purchases" keyed by purchase_id {
        purchase_id: Uuid as "uuid",
        user_id: Uuid as "uuid",
        username: String as "text",
        order_id: Option<Uuid> as "uuid",
        amount_minor: i64 as "bigint",
        currency: String as "text",
        refunded_minor: i64 as "bigint",
        /// `requested`, `authorized`, `declined` or `refunded`.
        status: String as "text",
        payment_method: String as "text",
        card_brand: String as "text",
        card_last4: String as "text",
        card_exp_month: i32 as "int",
        card_exp_year: i32 as "int",
        card_fingerprint: String as "text",
        authorization_id: Option<String> as "text",
        decline_reason: Option<String> as "text",
        transaction_date: DateTime<Utc> as "timestamptz",
        requested_at: DateTime<Utc> as "timestamptz",
        updated_at: DateTime<Utc> as "timestamptz",
        /// The `ce_sequence` of the last event applied.
        version: i64 as "bigint",
    }
}

table_row! {
    /// A user's totals in one currency, or what a batch adds to them.
    pub struct SpendRow in "user_spend" {
        user_id: Uuid as "uuid",
        currency: String as "text",
        /// Purchases requested, whatever became of them.
        purchases: i64 as "bigint",
        authorized_minor: i64 as "bigint",
        refunded_minor: i64 as "bigint",
    }
}

/// Writes every row with one statement. Only what later events change is updated; the version
/// guard keeps an older event from overwriting a newer row.
pub async fn upsert(tx: &mut PgConnection, rows: Vec<PurchaseRow>) -> Result<(), sqlx::Error> {
    row::write_batch(
        tx,
        rows,
        "ON CONFLICT (purchase_id) DO UPDATE SET \
           refunded_minor = EXCLUDED.refunded_minor, status = EXCLUDED.status, \
           authorization_id = EXCLUDED.authorization_id, decline_reason = EXCLUDED.decline_reason, \
           updated_at = EXCLUDED.updated_at, version = EXCLUDED.version \
         WHERE purchases.version < EXCLUDED.version",
    )
    .await
}

/// Adds each row to its user's totals in its currency. Deltas, not totals: a batch only knows
/// what it adds, never the user's whole history.
pub async fn add_spend(tx: &mut PgConnection, deltas: Vec<SpendRow>) -> Result<(), sqlx::Error> {
    row::write_batch(
        tx,
        deltas,
        "ON CONFLICT (user_id, currency) DO UPDATE SET \
           purchases = user_spend.purchases + EXCLUDED.purchases, \
           authorized_minor = user_spend.authorized_minor + EXCLUDED.authorized_minor, \
           refunded_minor = user_spend.refunded_minor + EXCLUDED.refunded_minor",
    )
    .await
}

/// One purchase, if `owner` (when given) owns it.
pub async fn by_id(pool: &PgPool, purchase_id: Uuid, owner: Option<Uuid>) -> Result<Option<PurchaseRow>, sqlx::Error> {
    row::owned(pool, "purchase_id", purchase_id, owner).await
}

/// Up to `limit` of `user_id`'s purchases after `after`, newest first: one range scan of
/// `purchases_by_user`.
pub async fn page_of_user(
    pool: &PgPool,
    user_id: Uuid,
    after: Option<Keyset>,
    limit: i64,
) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    // Without a cursor the bound is `infinity`, above every time: one query shape, one plan.
    sqlx::query_as(&format!(
        "{}WHERE user_id = $1 \
           AND (requested_at, purchase_id) \
               < (COALESCE($2::timestamptz, 'infinity'), COALESCE($3::uuid, '00000000-0000-0000-0000-000000000000')) \
         ORDER BY requested_at DESC, purchase_id DESC LIMIT $4",
        row::select::<PurchaseRow>()
    ))
    .bind(user_id)
    .bind(after.map(|k| k.at))
    .bind(after.map(|k| k.id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// `user_id`'s totals, one row per currency, by currency.
pub async fn spend_of_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<SpendRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{}WHERE user_id = $1 ORDER BY currency",
        row::select::<SpendRow>()
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}
