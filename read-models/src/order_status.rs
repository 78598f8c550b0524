//! `order_status`: one row per order as of its latest event: where it stands in its lifecycle and
//! its payment, what it was priced at, and when each transition happened.

use chrono::{DateTime, Utc};
use domain::order::{OrderStatus, PaymentStatus};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::row::{self, table_row};
use crate::Keyset;

table_row! {
    /// An order's row. Statuses are stored as their names; the four totals are written together
    /// from one priced order, or are all NULL (an order placed without items).
    pub struct OrderStatusRow in "order_status" keyed by order_id {
        order_id: Uuid as "uuid",
        name: String as "text",
        note: Option<String> as "text",
        status: String as "text",
        payment_status: String as "text",
        /// Where the order was placed; `api` for one placed before orders had a channel.
        channel: String as "text",
        user_id: Option<Uuid> as "uuid",
        currency: Option<String> as "text",
        /// The sum of the line items' quantities; 0 for an order placed without items.
        item_count: i32 as "int",
        subtotal_minor: Option<i64> as "bigint",
        tax_minor: Option<i64> as "bigint",
        shipping_minor: Option<i64> as "bigint",
        total_minor: Option<i64> as "bigint",
        carrier: Option<String> as "text",
        tracking_number: Option<String> as "text",
        cancel_reason: Option<String> as "text",
        /// Why the latest payment failed; kept when a retry pays.
        payment_failure_reason: Option<String> as "text",
        /// The purchase that paid; kept after a refund.
        paid_with: Option<Uuid> as "uuid",
        placed_at: DateTime<Utc> as "timestamptz",
        confirmed_at: Option<DateTime<Utc>> as "timestamptz",
        processing_started_at: Option<DateTime<Utc>> as "timestamptz",
        shipped_at: Option<DateTime<Utc>> as "timestamptz",
        delivered_at: Option<DateTime<Utc>> as "timestamptz",
        cancelled_at: Option<DateTime<Utc>> as "timestamptz",
        paid_at: Option<DateTime<Utc>> as "timestamptz",
        /// The latest failure: a payment may fail more than once before one succeeds.
        payment_failed_at: Option<DateTime<Utc>> as "timestamptz",
        refunded_at: Option<DateTime<Utc>> as "timestamptz",
        /// Where the stock of the order's catalog items stands; `not_tracked` without any.
        stock_status: String as "text",
        updated_at: DateTime<Utc> as "timestamptz",
        /// The `ce_sequence` of the last event applied.
        version: i64 as "bigint",
    }
}

/// Writes every row with one statement. Each row is the order's whole state, so a conflict
/// replaces every column; the version guard keeps an older event from overwriting a newer row.
pub async fn upsert(tx: &mut PgConnection, rows: Vec<OrderStatusRow>) -> Result<(), sqlx::Error> {
    let on_conflict = format!(
        "ON CONFLICT (order_id) DO UPDATE SET {} WHERE order_status.version < EXCLUDED.version",
        row::replace_all::<OrderStatusRow>("order_id")
    );
    row::write_batch(tx, rows, &on_conflict).await
}

/// One order, if `owner` (when given) owns it.
pub async fn by_id(pool: &PgPool, order_id: Uuid, owner: Option<Uuid>) -> Result<Option<OrderStatusRow>, sqlx::Error> {
    row::owned(pool, "order_id", order_id, owner).await
}

/// The listing's filters. Every one is optional and they combine with AND.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub user_id: Option<Uuid>,
    /// Exact: names are stored trimmed, as they were placed.
    pub name: Option<String>,
    /// Inclusive.
    pub placed_from: Option<DateTime<Utc>>,
    /// Exclusive, so consecutive ranges neither overlap nor leave a gap.
    pub placed_to: Option<DateTime<Utc>>,
    pub limit: i64,
    /// Where the previous page ended, on `(placed_at, order_id)`.
    pub after: Option<Keyset>,
}

impl Filter {
    /// One page of the matching orders `owner` (when given) owns, newest first, and one more row
    /// to tell whether another page follows.
    pub async fn page(&self, pool: &PgPool, owner: Option<Uuid>) -> Result<Vec<OrderStatusRow>, sqlx::Error> {
        self.query(owner).build_query_as().fetch_all(pool).await
    }

    /// Only the filters given become conditions, rather than one `$n IS NULL OR ...` query for
    /// all: each shape then gets a plan on the index for its filter, which a generic catch-all
    /// plan would not. A user's own orders are one more such condition.
    fn query(&self, owner: Option<Uuid>) -> QueryBuilder<'_, Postgres> {
        let mut query = QueryBuilder::new(row::select::<OrderStatusRow>());
        query.push("WHERE TRUE");
        if let Some(owner) = owner {
            query.push(" AND user_id = ").push_bind(owner);
        }
        if let Some(status) = self.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(payment_status) = self.payment_status {
            query.push(" AND payment_status = ").push_bind(payment_status.as_str());
        }
        if let Some(user_id) = self.user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(name) = &self.name {
            query.push(" AND name = ").push_bind(name.as_str());
        }
        if let Some(from) = self.placed_from {
            query.push(" AND placed_at >= ").push_bind(from);
        }
        if let Some(to) = self.placed_to {
            query.push(" AND placed_at < ").push_bind(to);
        }
        if let Some(after) = self.after {
            query
                .push(" AND (placed_at, order_id) < (")
                .push_bind(after.at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        query
            .push(" ORDER BY placed_at DESC, order_id DESC LIMIT ")
            .push_bind(self.limit + 1);
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_replaces_every_column_but_the_key_unless_the_row_is_newer() {
        row::tests::assert_whole_row_batch::<OrderStatusRow>(
            "order_id, name, note, status, payment_status, channel,",
            "$1::uuid[], $2::text[]",
            "$30::bigint[]",
            "order_id",
            29,
        );
        assert!(row::replace_all::<OrderStatusRow>("order_id")
            .ends_with("updated_at = EXCLUDED.updated_at, version = EXCLUDED.version"));
    }

    #[test]
    fn only_the_filters_given_become_conditions() {
        let none = Filter {
            limit: 50,
            ..Filter::default()
        };
        assert!(none
            .query(None)
            .sql()
            .ends_with("FROM order_status WHERE TRUE ORDER BY placed_at DESC, order_id DESC LIMIT $1"));
        let some = Filter {
            status: Some(OrderStatus::Shipped),
            placed_to: Some("2025-01-20T00:00:00Z".parse().unwrap()),
            after: Some(Keyset {
                at: "2025-01-19T15:04:05Z".parse().unwrap(),
                id: Uuid::from_u128(9),
            }),
            limit: 2,
            ..Filter::default()
        };
        assert!(some.query(None).sql().ends_with(
            "WHERE TRUE AND status = $1 AND placed_at < $2 AND (placed_at, order_id) < ($3, $4) \
             ORDER BY placed_at DESC, order_id DESC LIMIT $5"
        ));
        // A user's listing is always limited to its own orders, whatever else it filters on.
        let own = Filter {
            user_id: Some(Uuid::from_u128(2)),
            limit: 2,
            ..Filter::default()
        };
        assert!(own
            .query(Some(Uuid::from_u128(1)))
            .sql()
            .ends_with("WHERE TRUE AND user_id = $1 AND user_id = $2 ORDER BY placed_at DESC, order_id DESC LIMIT $3"));
    }
}
