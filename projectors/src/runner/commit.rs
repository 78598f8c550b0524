//! One projection's share of a batch, written in one PostgreSQL transaction with its
//! checkpoints.

use std::collections::BTreeMap;
use std::ops::Range;

use sqlx::{Connection as _, PgConnection, PgPool};
use tracing::{debug, warn};

use super::{Batch, Positions, RunnerError};
use crate::db;
use crate::dead_letter::{self, DeadLetter, RawRecords};
use crate::projection::{LoggedEvent, Projection};

/// Rows, dead letters and checkpoint in one transaction: all or nothing. Returns how many
/// records became dead letters.
///
/// The transaction first takes the projection's tables (`ROW EXCLUSIVE`, the order a rebuild's
/// swap takes them in), then locks the stored checkpoint rows of the batch's partitions and
/// checks each is still `positions`. When it is not, nothing is written and the runner stops
/// with [`RunnerError::CheckpointMoved`]: a rebuild swapped the projection in, or this process
/// lost the partition (the group gave it to another while this one was silent) and the new
/// owner has folded it since. A live runner claims its rows before its first batch, so there is
/// always a row to lock. On success `positions` moves past the batch.
pub async fn commit(
    projection: Projection,
    pool: &PgPool,
    positions: &mut Positions,
    batch: &Batch,
) -> Result<usize, RunnerError> {
    commit_as(projection, Write::Ordinary, pool, positions, batch).await
}

/// How a batch's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Upserts: what every live batch does.
    Ordinary,
    /// [`Projection::apply_bulk`] for the whole batch first, the ordinary way when PostgreSQL
    /// refuses any of it: the bulk load of a rebuild.
    Bulk,
}

/// [`commit`], writing the rows as `write` says.
pub(crate) async fn commit_as(
    projection: Projection,
    write: Write,
    pool: &PgPool,
    positions: &mut Positions,
    batch: &Batch,
) -> Result<usize, RunnerError> {
    let next_offsets = &batch.next_offsets;
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "LOCK TABLE {} IN ROW EXCLUSIVE MODE",
        db::tables(projection).join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    let partitions: Vec<i32> = next_offsets.keys().copied().collect();
    let stored: BTreeMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT partition, next_offset FROM projection_checkpoint \
         WHERE projection = $1 AND partition = ANY($2) FOR UPDATE",
    )
    .bind(projection.name())
    .bind(&partitions)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    for partition in partitions {
        let (expected, found) = (positions.get(&partition).copied(), stored.get(&partition).copied());
        if expected != found {
            return Err(RunnerError::CheckpointMoved {
                partition,
                expected,
                found,
            });
        }
    }
    let mut dead: Vec<DeadLetter> = batch
        .undecodable
        .iter()
        .map(|(record, error)| DeadLetter::undecodable(record.clone(), error))
        .collect();
    if write == Write::Ordinary || !apply_bulk(projection, &mut tx, &batch.events).await? {
        apply_setting_aside_refused(projection, &mut tx, &batch.events, &batch.records, &mut dead).await?;
    }
    dead.sort_by_key(|letter| (letter.partition(), letter.offset()));
    dead_letter::store(&mut tx, projection.name(), &dead).await?;
    db::save_checkpoints(&mut tx, projection.name(), next_offsets).await?;
    tx.commit().await?;
    positions.extend(next_offsets.iter().map(|(&p, &o)| (p, o)));
    for letter in &dead {
        warn!(
            projection = projection.name(),
            partition = letter.partition(),
            offset = letter.offset(),
            error = letter.error(),
            "record set aside as a dead letter"
        );
    }
    Ok(dead.len())
}

/// Applies `events` inside `tx` with [`Projection::apply_bulk`], under a savepoint; says whether
/// it did. When PostgreSQL refuses a value, nothing of it is kept and the caller applies the
/// batch the ordinary way, which finds and sets aside the refused events.
async fn apply_bulk(
    projection: Projection,
    tx: &mut PgConnection,
    events: &[LoggedEvent],
) -> Result<bool, sqlx::Error> {
    let mut savepoint = tx.begin().await?;
    match projection.apply_bulk(&mut savepoint, events).await {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(error) if dead_letter::is_data_error(&error) => {
            savepoint.rollback().await?;
            debug!(projection = projection.name(), %error, "bulk write refused; applying the batch the ordinary way");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Applies `events` inside `tx`; when PostgreSQL refuses a value, finds the events it refuses
/// and adds them to `dead` instead of applying them.
///
/// Each slice is tried under a savepoint. A refused slice is rolled back and split in halves,
/// tried in log order, down to the single events that cannot be applied, so a batch with one
/// bad event still applies every other one. Applying consecutive slices one after the other
/// folds to the same rows as the whole batch at once, as consecutive batches do.
async fn apply_setting_aside_refused(
    projection: Projection,
    tx: &mut PgConnection,
    events: &[LoggedEvent],
    records: &RawRecords,
    dead: &mut Vec<DeadLetter>,
) -> Result<(), sqlx::Error> {
    // Slices still to try, the next one last.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..events.len());
    while let Some(slice) = pending.pop() {
        if slice.is_empty() {
            continue;
        }
        let mut savepoint = tx.begin().await?;
        match projection.apply(&mut savepoint, &events[slice.clone()]).await {
            Ok(()) => savepoint.commit().await?,
            Err(error) if dead_letter::is_data_error(&error) => {
                savepoint.rollback().await?;
                if slice.len() == 1 {
                    dead.push(DeadLetter::refused(
                        records.get(slice.start),
                        &events[slice.start],
                        &error,
                    ));
                } else {
                    let middle = slice.start + slice.len() / 2;
                    pending.push(middle..slice.end);
                    pending.push(slice.start..middle);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use domain::order::{self, OrderName, OrderPlaced};
    use domain::Event;
    use rdkafka::message::{OwnedMessage, Timestamp};
    use service_kit::kafka::Envelope;
    use service_kit::testing::Isolation;
    use uuid::Uuid;

    use super::*;

    /// A batch of one `OrderPlaced` per name, at offsets 0, 1, … of partition 0.
    fn placed(names: &[&str]) -> Batch {
        let mut batch = Batch::default();
        for (offset, name) in names.iter().enumerate() {
            let offset = offset as i64;
            let placed = OrderPlaced {
                order_id: Uuid::new_v4(),
                name: OrderName::parse(name).unwrap(),
                note: None,
                placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
                details: None,
                channel: order::Channel::Api,
                user_id: None,
                catalog_items: None,
            };
            let key = placed.order_id.to_string().into_bytes();
            batch.events.push(LoggedEvent {
                partition: 0,
                offset,
                envelope: Envelope {
                    id: Uuid::new_v4(),
                    time: placed.placed_at,
                    sequence: Some(1),
                    causation_id: None,
                    correlation_id: placed.order_id,
                    trace: Default::default(),
                    message: Event::Order(order::Event::OrderPlaced(placed)),
                },
            });
            batch.records.push(&OwnedMessage::new(
                Some(b"{}".to_vec()),
                Some(key),
                "events".to_owned(),
                Timestamp::NotAvailable,
                0,
                offset,
                None,
            ));
            batch.next_offsets.insert(0, offset + 1);
        }
        batch
    }

    #[tokio::test]
    async fn a_bulk_batch_postgres_refuses_is_applied_the_ordinary_way_setting_the_refused_event_aside() {
        let isolation = Isolation::new();
        let pool = isolation.database.pool().unwrap();
        db::migrate(&pool, &isolation.database.database_schema).await.unwrap();
        // A rule the table refuses one order by, as it would a value out of a column's range:
        // the copy of the whole batch fails, and only that order may be set aside.
        sqlx::query("ALTER TABLE order_status ADD CONSTRAINT refused CHECK (name <> 'Refused')")
            .execute(&pool)
            .await
            .unwrap();
        let batch = placed(&["Ada", "Refused", "Grace"]);
        for projection in [Projection::OrderStatus, Projection::OrderHistory] {
            let mut positions = Positions::new();
            let dead = commit_as(projection, Write::Bulk, &pool, &mut positions, &batch)
                .await
                .unwrap();
            assert_eq!(positions, Positions::from([(0, 3)]), "{}", projection.name());
            let table = projection.name();
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            if projection == Projection::OrderStatus {
                assert_eq!((dead, rows), (1, 2), "every order but the refused one");
            } else {
                assert_eq!((dead, rows), (0, 3), "order_history has no such rule");
            }
        }
        let letters: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, \"offset\" FROM dead_letters ORDER BY projection")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(letters, [("order_status".to_owned(), 1)]);
    }
}
