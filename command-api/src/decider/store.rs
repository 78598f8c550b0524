//! The decider's local state store: one `redb` file per decider instance holding, per owned
//! partition, the state of every aggregate, the verdicts within the idempotency horizon, and
//! how far it has read each topic it mirrors.
//!
//! The store is a cache of two compacted topics (the Kafka Streams design): the decider state
//! changelog (one record per changed aggregate) and the verdicts topic. Kafka stays the truth;
//! what the store holds is always a prefix of those topics, and the position it recorded with
//! each write says which prefix, so a restore reads only what came after it. That is why writes
//! may be made durable lazily ([`Durability::None`], made durable at most a second later): a
//! crash loses the last writes and their positions together, never one without the other.
//!
//! Every call is blocking file I/O: call it off the async workers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase as _, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::state::AggregateEntry;
use crate::outcome::Outcome;

/// Aggregates by (partition, aggregate id).
const AGGREGATES: TableDefinition<'_, [u8; 20], &[u8]> = TableDefinition::new("aggregates");
/// Verdicts by (partition, command id).
const VERDICTS: TableDefinition<'_, [u8; 20], &[u8]> = TableDefinition::new("verdicts");
/// (partition, decided at, command id) of every verdict, oldest first within a partition, so
/// the verdicts past the horizon are found without reading the others.
const VERDICT_AGES: TableDefinition<'_, [u8; 28], ()> = TableDefinition::new("verdict_ages");
/// The next offset to read of (mirrored topic, partition).
const POSITIONS: TableDefinition<'_, u64, i64> = TableDefinition::new("positions");

/// How stale the file may be after a crash: writes are made durable at least this often.
const DURABLE_EVERY: Duration = Duration::from_secs(1);
/// The page cache: the store's memory does not grow with the number of aggregates.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("decider state store: {0}")]
    Redb(#[from] redb::Error),
    #[error("decider state store at {path}: {source}")]
    Open { path: String, source: redb::Error },
    #[error("decider state store holds a record that does not decode: {0}")]
    Corrupt(#[from] serde_json::Error),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A topic the store mirrors, co-partitioned with commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Mirrored {
    /// The decider state changelog.
    Changelog = 0,
    /// The verdicts topic.
    Verdicts = 1,
}

/// What the store and the changelog hold for one aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Stored {
    Live(AggregateEntry),
    /// Its history holds an event that does not decode: its state is unknown.
    Quarantined,
}

#[derive(Debug, Serialize, Deserialize)]
struct Remembered {
    at_ms: i64,
    outcome: Outcome,
}

/// Everything one write changes, applied in one store transaction.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) aggregates: Vec<(i32, Uuid, Stored)>,
    /// Verdicts with when they were decided (milliseconds since the epoch).
    pub(crate) verdicts: Vec<(i32, i64, Outcome)>,
    /// The next offset to read of each mirrored partition these changes bring the store to.
    pub(crate) positions: Vec<(Mirrored, i32, i64)>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.aggregates.is_empty() && self.verdicts.is_empty() && self.positions.is_empty()
    }

    /// Records that `partition` of `log` has been read up to `next_offset`.
    pub(crate) fn advance(&mut self, log: Mirrored, partition: i32, next_offset: i64) {
        match self.positions.iter_mut().find(|(l, p, _)| *l == log && *p == partition) {
            Some((_, _, offset)) => *offset = (*offset).max(next_offset),
            None => self.positions.push((log, partition, next_offset)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    last_durable: Mutex<Instant>,
}

fn id_key(partition: i32, id: Uuid) -> [u8; 20] {
    let mut key = [0; 20];
    key[..4].copy_from_slice(&partition_bytes(partition));
    key[4..].copy_from_slice(id.as_bytes());
    key
}

fn age_key(partition: i32, at_ms: i64, command_id: Uuid) -> [u8; 28] {
    let mut key = [0; 28];
    key[..4].copy_from_slice(&partition_bytes(partition));
    key[4..12].copy_from_slice(&at_ms.max(0).to_be_bytes());
    key[12..].copy_from_slice(command_id.as_bytes());
    key
}

fn partition_bytes(partition: i32) -> [u8; 4] {
    u32::try_from(partition).unwrap_or_default().to_be_bytes()
}

/// The range of 20-byte keys of `partition`.
fn partition_range(partition: i32) -> std::ops::RangeInclusive<[u8; 20]> {
    id_key(partition, Uuid::nil())..=id_key(partition, Uuid::max())
}

fn position_key(log: Mirrored, partition: i32) -> u64 {
    ((log as u64) << 32) | u64::from(u32::try_from(partition).unwrap_or_default())
}

impl Store {
    /// Opens (or creates) the store file at `path`. Fails if another process has it open.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let db = create(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            db,
            last_durable: Mutex::new(Instant::now()),
        })
    }

    /// The next offset to read of `partition` of `log`, if the store has read any of it.
    pub(crate) fn position(&self, log: Mirrored, partition: i32) -> Result<Option<i64>> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(POSITIONS).map_err(redb::Error::from)?;
        let position = table
            .get(position_key(log, partition))
            .map_err(redb::Error::from)?
            .map(|offset| offset.value());
        Ok(position)
    }

    /// The stored aggregates among `aggregates`, and the verdicts among `commands` decided at or
    /// after `cutoff_ms`.
    pub(crate) fn load(
        &self,
        aggregates: &[(i32, Uuid)],
        commands: &[(i32, Uuid)],
        cutoff_ms: i64,
    ) -> Result<(HashMap<Uuid, Stored>, HashMap<Uuid, Outcome>)> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(AGGREGATES).map_err(redb::Error::from)?;
        let mut found = HashMap::new();
        for &(partition, id) in aggregates {
            if let Some(value) = table.get(id_key(partition, id)).map_err(redb::Error::from)? {
                found.insert(id, serde_json::from_slice(value.value())?);
            }
        }
        let table = read.open_table(VERDICTS).map_err(redb::Error::from)?;
        let mut decided = HashMap::new();
        for &(partition, id) in commands {
            if let Some(value) = table.get(id_key(partition, id)).map_err(redb::Error::from)? {
                let remembered: Remembered = serde_json::from_slice(value.value())?;
                if remembered.at_ms >= cutoff_ms {
                    decided.insert(id, remembered.outcome);
                }
            }
        }
        Ok((found, decided))
    }

    /// Applies `changes` in one transaction.
    pub(crate) fn write(&self, changes: &Changes) -> Result<()> {
        let write = self.begin_write()?;
        apply(&write, changes)?;
        write.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Forgets what the store holds of `partition` of `log`, its position included: the next
    /// restore reads that topic partition from its beginning.
    pub(crate) fn clear(&self, log: Mirrored, partition: i32) -> Result<()> {
        let write = self.begin_write()?;
        clear(&write, log, partition)?;
        write.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Forgets the verdicts of `partitions` decided before `cutoff_ms`.
    pub(crate) fn forget_verdicts_before(&self, partitions: &[i32], cutoff_ms: i64) -> Result<()> {
        let write = self.begin_write()?;
        forget_verdicts_before(&write, partitions, cutoff_ms)?;
        write.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Up to `limit` aggregates of `partition` after `after` (from the first when `None`), in
    /// key order: a partition read in chunks, in bounded memory.
    pub(crate) fn aggregates_after(
        &self,
        partition: i32,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Stored)>> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(AGGREGATES).map_err(redb::Error::from)?;
        let end = id_key(partition, Uuid::max());
        let range = match after {
            Some(after) => table.range((
                std::ops::Bound::Excluded(id_key(partition, after)),
                std::ops::Bound::Included(end),
            )),
            None => table.range(partition_range(partition)),
        }
        .map_err(redb::Error::from)?;
        let mut chunk = Vec::new();
        for entry in range.take(limit) {
            let (key, value) = entry.map_err(redb::Error::from)?;
            let id = Uuid::from_slice(&key.value()[4..]).unwrap_or_default();
            chunk.push((id, serde_json::from_slice(value.value())?));
        }
        Ok(chunk)
    }

    /// Makes everything written so far durable; for a clean stop.
    pub(crate) fn persist(&self) -> Result<()> {
        let mut write = self.db.begin_write().map_err(redb::Error::from)?;
        write.set_quick_repair(true);
        write.commit().map_err(redb::Error::from)?;
        *self
            .last_durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        Ok(())
    }

    /// A write transaction, made durable if the last durable one is [`DURABLE_EVERY`] old.
    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let mut write = self.db.begin_write().map_err(redb::Error::from)?;
        let mut last = self
            .last_durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= DURABLE_EVERY {
            write.set_quick_repair(true);
            *last = Instant::now();
        } else {
            write.set_durability(Durability::None).map_err(redb::Error::from)?;
        }
        Ok(write)
    }
}

/// Creates `dir` if needed and checks a file can be written in it: called at start-up, so a
/// directory the store could never open stops the service there instead of being retried. The
/// probe file is the process's own, for replicas may share the directory and start together.
pub(crate) fn check_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn create(path: &Path) -> Result<Database, redb::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(path)?;
    let mut write = db.begin_write()?;
    write.set_quick_repair(true);
    write.open_table(AGGREGATES)?;
    write.open_table(VERDICTS)?;
    write.open_table(VERDICT_AGES)?;
    write.open_table(POSITIONS)?;
    write.commit()?;
    Ok(db)
}

fn apply(write: &WriteTransaction, changes: &Changes) -> Result<()> {
    let mut table = write.open_table(AGGREGATES).map_err(redb::Error::from)?;
    for (partition, id, stored) in &changes.aggregates {
        let value = serde_json::to_vec(stored)?;
        table
            .insert(id_key(*partition, *id), value.as_slice())
            .map_err(redb::Error::from)?;
    }
    drop(table);
    let mut verdicts = write.open_table(VERDICTS).map_err(redb::Error::from)?;
    let mut ages = write.open_table(VERDICT_AGES).map_err(redb::Error::from)?;
    for (partition, at_ms, outcome) in &changes.verdicts {
        let remembered = Remembered {
            at_ms: *at_ms,
            outcome: outcome.clone(),
        };
        let value = serde_json::to_vec(&remembered)?;
        let key = id_key(*partition, outcome.command_id);
        let previous = verdicts.insert(key, value.as_slice()).map_err(redb::Error::from)?;
        if let Some(previous) = previous {
            let previous: Remembered = serde_json::from_slice(previous.value())?;
            ages.remove(age_key(*partition, previous.at_ms, outcome.command_id))
                .map_err(redb::Error::from)?;
        }
        ages.insert(age_key(*partition, *at_ms, outcome.command_id), ())
            .map_err(redb::Error::from)?;
    }
    drop((verdicts, ages));
    let mut positions = write.open_table(POSITIONS).map_err(redb::Error::from)?;
    for &(log, partition, offset) in &changes.positions {
        positions
            .insert(position_key(log, partition), offset)
            .map_err(redb::Error::from)?;
    }
    Ok(())
}

fn clear(write: &WriteTransaction, log: Mirrored, partition: i32) -> Result<(), redb::Error> {
    match log {
        Mirrored::Changelog => {
            let mut table = write.open_table(AGGREGATES)?;
            table.retain_in(partition_range(partition), |_, _| false)?;
        }
        Mirrored::Verdicts => {
            let mut table = write.open_table(VERDICTS)?;
            table.retain_in(partition_range(partition), |_, _| false)?;
            let mut ages = write.open_table(VERDICT_AGES)?;
            let all = age_key(partition, 0, Uuid::nil())..=age_key(partition, i64::MAX, Uuid::max());
            ages.retain_in(all, |_, ()| false)?;
        }
    }
    write.open_table(POSITIONS)?.remove(position_key(log, partition))?;
    Ok(())
}

fn forget_verdicts_before(write: &WriteTransaction, partitions: &[i32], cutoff_ms: i64) -> Result<(), redb::Error> {
    let mut verdicts = write.open_table(VERDICTS)?;
    let mut ages = write.open_table(VERDICT_AGES)?;
    for &partition in partitions {
        let expired = age_key(partition, 0, Uuid::nil())..age_key(partition, cutoff_ms, Uuid::nil());
        for entry in ages.extract_from_if(expired, |_, ()| true)? {
            let key = entry?.0.value();
            let command_id = Uuid::from_slice(&key[12..]).unwrap_or_default();
            verdicts.remove(id_key(partition, command_id))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use domain::State;

    use super::*;
    use crate::outcome::{Refusal, Verdict};

    fn store() -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("decider-store-{}.redb", Uuid::new_v4()));
        (Store::open(&path).expect("store opens"), path)
    }

    fn outcome(id: u128) -> Outcome {
        Outcome {
            command_id: Uuid::from_u128(id),
            aggregate_id: Uuid::from_u128(id),
            request_digest: None,
            verdict: Verdict::Refused {
                refusal: Refusal::Undecodable,
            },
        }
    }

    #[test]
    fn what_is_written_reads_back_per_partition_and_survives_reopening() {
        let (store, path) = store();
        let live = Stored::Live(AggregateEntry {
            state: State::Unknown,
            version: 3,
        });
        let mut changes = Changes {
            aggregates: vec![
                (1, Uuid::from_u128(7), live.clone()),
                (2, Uuid::from_u128(8), Stored::Quarantined),
            ],
            verdicts: vec![(1, 1_000, outcome(9))],
            positions: Vec::new(),
        };
        changes.advance(Mirrored::Changelog, 1, 5);
        changes.advance(Mirrored::Changelog, 1, 4);
        store.write(&changes).unwrap();
        store.persist().unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.position(Mirrored::Changelog, 1).unwrap(),
            Some(5),
            "positions only advance"
        );
        assert_eq!(store.position(Mirrored::Verdicts, 1).unwrap(), None);
        let (found, decided) = store
            .load(
                &[
                    (1, Uuid::from_u128(7)),
                    (1, Uuid::from_u128(8)),
                    (2, Uuid::from_u128(8)),
                ],
                &[(1, Uuid::from_u128(9)), (2, Uuid::from_u128(9))],
                0,
            )
            .unwrap();
        assert_eq!(found.get(&Uuid::from_u128(7)), Some(&live));
        assert_eq!(found.get(&Uuid::from_u128(8)), Some(&Stored::Quarantined));
        assert_eq!(found.len(), 2, "an aggregate is found in its own partition only");
        assert_eq!(decided.len(), 1);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn verdicts_are_forgotten_past_the_horizon_and_not_before() {
        let (store, path) = store();
        let changes = Changes {
            verdicts: vec![(0, 1_000, outcome(1)), (0, 2_000, outcome(2))],
            ..Changes::default()
        };
        store.write(&changes).unwrap();
        let ids = [(0, Uuid::from_u128(1)), (0, Uuid::from_u128(2))];
        assert_eq!(
            store.load(&[], &ids, 1_500).unwrap().1.len(),
            1,
            "a lookup ignores expired verdicts"
        );
        store.forget_verdicts_before(&[0], 1_000).unwrap();
        assert_eq!(
            store.load(&[], &ids, 0).unwrap().1.len(),
            2,
            "a verdict exactly at the cutoff is kept"
        );
        store.forget_verdicts_before(&[0], 1_500).unwrap();
        let decided = store.load(&[], &ids, 0).unwrap().1;
        assert_eq!(decided.keys().collect::<Vec<_>>(), [&Uuid::from_u128(2)]);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_cleared_partition_is_empty_and_read_again_from_the_start_while_others_stay() {
        let (store, path) = store();
        let live = Stored::Live(AggregateEntry::default());
        let mut changes = Changes {
            aggregates: (0..5u128)
                .map(|i| (1, Uuid::from_u128(i), live.clone()))
                .chain([(2, Uuid::from_u128(9), live.clone())])
                .collect(),
            ..Changes::default()
        };
        changes.advance(Mirrored::Changelog, 1, 10);
        store.write(&changes).unwrap();
        let first = store.aggregates_after(1, None, 3).unwrap();
        let rest = store.aggregates_after(1, first.last().map(|(id, _)| *id), 3).unwrap();
        assert_eq!((first.len(), rest.len()), (3, 2), "read in chunks, each aggregate once");
        store.clear(Mirrored::Changelog, 1).unwrap();
        assert!(store.aggregates_after(1, None, 10).unwrap().is_empty());
        assert_eq!(store.position(Mirrored::Changelog, 1).unwrap(), None);
        assert_eq!(store.aggregates_after(2, None, 10).unwrap().len(), 1);
        let _ = std::fs::remove_file(path);
    }
}
