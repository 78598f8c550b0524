//! A table's row declared once: [`table_row!`] writes the struct, its columns with their
//! PostgreSQL types, and how a batch of rows becomes one array per column for `UNNEST`.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{FromRow, PgConnection, PgPool, Postgres};
use uuid::Uuid;

/// A statement whose parameters are still being bound.
pub(crate) type Statement<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// A row of one table, as [`table_row!`] declares it: read back whole with `FromRow`.
pub(crate) trait Row: Sized + for<'r> FromRow<'r, PgRow> + Send + Unpin {
    /// The table the rows live in.
    const TABLE: &'static str;
    /// Every column with its PostgreSQL type, in the order of the struct's fields.
    const COLUMNS: &'static [(&'static str, &'static str)];

    /// Binds `rows` to `statement` as one array per column, in [`Self::COLUMNS`] order.
    fn bind_arrays(rows: Vec<Self>, statement: Statement<'_>) -> Statement<'_>;

    /// Appends the row as one tuple of `COPY … (FORMAT binary)`, in [`Self::COLUMNS`] order.
    fn copy_tuple(&self, out: &mut Vec<u8>);
}

/// A row that is one aggregate's latest state: one row per aggregate, keyed by its id, holding
/// the `ce_sequence` of the last event applied. The projections fold such rows alike.
pub trait LatestRow: Sized {
    /// The aggregate the row is of.
    fn id(&self) -> Uuid;
    /// The `ce_sequence` of the last event applied.
    fn version(&self) -> i64;
    /// The stored rows of `ids`; those without one are left out.
    fn load(tx: &mut PgConnection, ids: &[Uuid]) -> impl Future<Output = Result<Vec<Self>, sqlx::Error>> + Send;
    /// Writes the rows of aggregates the table does not hold yet, with one `COPY`: the bulk
    /// load of a rebuild. A row already stored fails the whole copy.
    fn copy_new(tx: &mut PgConnection, rows: &[Self]) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Declares a table's row: the struct (public fields, `sqlx::FromRow`) and its [`Row`] impl.
/// Each field names the PostgreSQL type of its column: `name: String as "text",`. A row declared
/// `keyed by <field>` is an aggregate's latest state, keyed by that field: it is a [`LatestRow`]
/// and has a `version` field.
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        pub struct $row:ident in $table:literal $(keyed by $key:ident)? {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty as $sql:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
        pub struct $row {
            $( $(#[$field_meta])* pub $field: $ty, )+
        }

        impl $crate::row::Row for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [(&'static str, &'static str)] = &[$( (stringify!($field), $sql), )+];

            fn bind_arrays(rows: Vec<Self>, statement: $crate::row::Statement<'_>) -> $crate::row::Statement<'_> {
                struct Arrays {
                    $( $field: Vec<$ty>, )+
                }
                let mut arrays = Arrays {
                    $( $field: Vec::with_capacity(rows.len()), )+
                };
                for row in rows {
                    $( arrays.$field.push(row.$field); )+
                }
                statement $( .bind(arrays.$field) )+
            }

            fn copy_tuple(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&(Self::COLUMNS.len() as i16).to_be_bytes());
                $( $crate::row::CopyValue::copy_value(&self.$field, $sql, out); )+
            }
        }

        $(
            impl $crate::row::LatestRow for $row {
                fn id(&self) -> ::uuid::Uuid {
                    self.$key
                }

                fn version(&self) -> i64 {
                    self.version
                }

                fn load(
                    tx: &mut ::sqlx::PgConnection,
                    ids: &[::uuid::Uuid],
                ) -> impl ::std::future::Future<Output = Result<Vec<Self>, ::sqlx::Error>> + Send {
                    $crate::row::load(tx, stringify!($key), ids)
                }

                fn copy_new(
                    tx: &mut ::sqlx::PgConnection,
                    rows: &[Self],
                ) -> impl ::std::future::Future<Output = Result<(), ::sqlx::Error>> + Send {
                    $crate::row::copy_batch(tx, rows)
                }
            }
        )?
    };
}
pub(crate) use table_row;

/// `SELECT <every column> FROM <table> `, for a query to add its conditions to.
pub(crate) fn select<R: Row>() -> String {
    format!("SELECT {} FROM {} ", column_list::<R>(), R::TABLE)
}

fn column_list<R: Row>() -> String {
    R::COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// `column = EXCLUDED.column` for every column but `key`: a conflict that replaces the row.
pub(crate) fn replace_all<R: Row>(key: &str) -> String {
    R::COLUMNS
        .iter()
        .filter(|(name, _)| *name != key)
        .map(|(name, _)| format!("{name} = EXCLUDED.{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement [`write_batch`] runs: every row in one `INSERT … SELECT * FROM UNNEST(…)`,
/// then `on_conflict`.
pub(crate) fn batch_sql<R: Row>(on_conflict: &str) -> String {
    let arrays = R::COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, sql_type))| format!("${}::{sql_type}[]", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({arrays}) {on_conflict}",
        R::TABLE,
        column_list::<R>()
    )
}

/// Writes `rows` with one statement, however many there are: a round trip per batch, not per row.
pub(crate) async fn write_batch<R: Row>(
    tx: &mut PgConnection,
    rows: Vec<R>,
    on_conflict: &str,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = batch_sql::<R>(on_conflict);
    R::bind_arrays(rows, sqlx::query(&sql)).execute(tx).await?;
    Ok(())
}

/// Writes `rows` with one `COPY … FROM STDIN (FORMAT binary)`: no conflict handling and no
/// per-statement parameter arrays, so the bulk load of a rebuild costs PostgreSQL only the
/// tuples themselves. A row that conflicts with a stored one fails the whole copy, as does any
/// value the column refuses; the caller's savepoint decides what follows.
///
/// Binary, not text: each value arrives exactly as [`write_batch`]'s parameters bind it (times
/// as microseconds, UUIDs as bytes), so the two paths cannot parse a value differently.
pub(crate) async fn copy_batch<R: Row>(tx: &mut PgConnection, rows: &[R]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    // The signature, flags and header extension length of the binary format.
    let mut data = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
    for row in rows {
        row.copy_tuple(&mut data);
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            R::TABLE,
            column_list::<R>()
        ))
        .await?;
    if let Err(error) = copy.send(data).await {
        // The copy's own error, if the server sent one, says more than a failed write.
        return Err(copy.abort("sending the rows failed").await.err().unwrap_or(error));
    }
    copy.finish().await?;
    Ok(())
}

/// A column value in `COPY`'s binary format: its length (-1 for NULL), then the bytes of the
/// type's binary input function. `sql_type` is the column's type as [`table_row!`] declares it.
pub(crate) trait CopyValue {
    fn copy_value(&self, sql_type: &str, out: &mut Vec<u8>);
}

fn copy_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    // A value longer than a COPY message cannot be sent anyway; PostgreSQL refuses the row.
    out.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl CopyValue for Uuid {
    fn copy_value(&self, _: &str, out: &mut Vec<u8>) {
        copy_bytes(self.as_bytes(), out);
    }
}

impl CopyValue for String {
    fn copy_value(&self, sql_type: &str, out: &mut Vec<u8>) {
        if sql_type == "jsonb" {
            // jsonb's binary input is a format version (1) and the JSON text.
            out.extend_from_slice(&i32::try_from(self.len() + 1).unwrap_or(i32::MAX).to_be_bytes());
            out.push(1);
            out.extend_from_slice(self.as_bytes());
        } else {
            copy_bytes(self.as_bytes(), out);
        }
    }
}

impl CopyValue for i64 {
    fn copy_value(&self, _: &str, out: &mut Vec<u8>) {
        copy_bytes(&self.to_be_bytes(), out);
    }
}

impl CopyValue for i32 {
    fn copy_value(&self, _: &str, out: &mut Vec<u8>) {
        copy_bytes(&self.to_be_bytes(), out);
    }
}

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in microseconds after the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl CopyValue for DateTime<Utc> {
    fn copy_value(&self, _: &str, out: &mut Vec<u8>) {
        // As sqlx binds a parameter: microseconds since PostgreSQL's epoch, nanoseconds dropped.
        copy_bytes(&(self.timestamp_micros() - POSTGRES_EPOCH_MICROS).to_be_bytes(), out);
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn copy_value(&self, sql_type: &str, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.copy_value(sql_type, out),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

/// The stored rows whose `key` column is one of `ids`; those without one are left out.
pub(crate) async fn load<R: Row>(tx: &mut PgConnection, key: &str, ids: &[Uuid]) -> Result<Vec<R>, sqlx::Error> {
    sqlx::query_as(&format!("{}WHERE {key} = ANY($1)", select::<R>()))
        .bind(ids)
        .fetch_all(tx)
        .await
}

/// The row whose `key` column is `id`, if `owner` (when given) is its `user_id`: a row of another
/// user is never fetched.
pub(crate) async fn owned<R: Row>(
    pool: &PgPool,
    key: &str,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<Option<R>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{}WHERE {key} = $1 AND ($2::uuid IS NULL OR user_id = $2)",
        select::<R>()
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(pool)
    .await
}

/// The row whose unique text column `key` is `value`.
pub(crate) async fn by_text<R: Row>(pool: &PgPool, key: &str, value: &str) -> Result<Option<R>, sqlx::Error> {
    sqlx::query_as(&format!("{}WHERE {key} = $1", select::<R>()))
        .bind(value)
        .fetch_optional(pool)
        .await
}

/// Up to `limit` rows whose unique text column `key` sorts after `after`, in `key` order: a
/// keyset page, one range scan of the column's index (`COLLATE "C"`, so bytewise).
pub(crate) async fn page_by_text<R: Row>(
    pool: &PgPool,
    key: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<R>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{}WHERE $1::text IS NULL OR {key} > $1 ORDER BY {key} LIMIT $2",
        select::<R>()
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::track_user::TrackUserRow;

    /// Checks the batch statement of a row whose conflicts replace the whole row: it starts with
    /// `columns`, binds typed arrays from `first_arrays` to `last_array`, and the replacement
    /// sets `replaced` columns, every one but `key`.
    pub(crate) fn assert_whole_row_batch<R: Row>(
        columns: &str,
        first_arrays: &str,
        last_array: &str,
        key: &str,
        replaced: usize,
    ) {
        let sql = batch_sql::<R>("");
        assert!(
            sql.starts_with(&format!("INSERT INTO {} ({columns}", R::TABLE)),
            "{sql}"
        );
        assert!(sql.contains(first_arrays), "{sql}");
        assert!(sql.contains(&format!("{last_array})")), "{sql}");
        let replace = replace_all::<R>(key);
        assert_eq!(replace.matches("= EXCLUDED.").count(), replaced, "{replace}");
        assert!(!replace.contains(key), "{replace}");
    }

    #[test]
    fn a_batch_is_one_unnest_statement_over_every_column() {
        assert_eq!(
            batch_sql::<TrackUserRow>("ON CONFLICT DO NOTHING"),
            "INSERT INTO track_user (id, name, counter, created_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[]) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            select::<TrackUserRow>(),
            "SELECT id, name, counter, created_at FROM track_user "
        );
        assert_eq!(TrackUserRow::TABLE, "track_user");
    }
}
