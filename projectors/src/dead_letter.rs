//! Dead letters: records a projection cannot apply, set aside so that no record, whoever wrote
//! it, can stop a projection.
//!
//! A record is a dead letter of a projection when it cannot be decoded (a missing or invalid
//! CloudEvents header, bad JSON, an unknown `ce_type`, a value the domain refuses) or when
//! PostgreSQL refuses the values it carries (SQLSTATE classes 22 and 23). It is stored, as it
//! was on the log, in the transaction that moves the projection's checkpoint past it; every
//! other record of the batch is applied. Any other error is transient and retried in place.
//!
//! `projectors dead-letters list` prints them; `projectors dead-letters retry <id>` decodes the
//! stored record again and applies it to its projection, once whatever refused it is fixed.

use std::fmt::Write as _;
use std::ops::Range;

use chrono::{DateTime, Utc};
use domain::{Event, Message as _};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::Message;
use service_kit::kafka::envelope::HeaderList;
use service_kit::kafka::Envelope;
use sqlx::{PgConnection, PgPool};
use thiserror::Error;
use uuid::Uuid;

use crate::db;
use crate::projection::{LoggedEvent, Projection};

/// Whether PostgreSQL refused the values themselves, so that retrying the same rows can never
/// succeed: data exceptions (class 22, e.g. a NUL in text, a time out of range) and integrity
/// violations (class 23, e.g. a CHECK constraint). A value the driver cannot encode is the same.
pub fn is_data_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Encode(_) => true,
        error => error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
    }
}

/// One record as it was on the log: what a dead letter keeps so it can be decoded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    /// `None` when the record has no headers at all.
    headers: Option<Vec<(String, Option<Vec<u8>>)>>,
    payload: Option<Vec<u8>>,
}

impl RawRecord {
    pub(crate) fn of(message: &impl Message) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            headers: readable_headers(message).map(|headers| {
                headers
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value.map(<[u8]>::to_vec)))
                    .collect()
            }),
            payload: message.payload().map(<[u8]>::to_vec),
        }
    }

    /// The record as a Kafka message read from `topic`, for the envelope to decode.
    fn message(&self, topic: &str) -> OwnedMessage {
        let headers = self.headers.as_ref().map(|headers| {
            headers
                .iter()
                .fold(OwnedHeaders::new_with_capacity(headers.len()), |owned, (key, value)| {
                    owned.insert(Header {
                        key,
                        value: value.as_deref(),
                    })
                })
        });
        OwnedMessage::new(
            self.payload.clone(),
            self.key.clone(),
            topic.to_owned(),
            Timestamp::NotAvailable,
            self.partition,
            self.offset,
            headers,
        )
    }

    /// The `ce_type` header, if any.
    fn event_type(&self) -> Option<String> {
        let headers = self.headers.as_ref()?;
        let (_, value) = headers.iter().find(|(key, _)| key == "ce_type")?;
        value.as_deref().map(|v| printable(&String::from_utf8_lossy(v)))
    }
}

/// The records of a batch as they were on the log, kept in one buffer: every record applied
/// might yet be refused by PostgreSQL, and keeping it costs a copy instead of allocations.
#[derive(Debug, Default)]
pub(crate) struct RawRecords {
    bytes: Vec<u8>,
    records: Vec<RawSpans>,
    /// Every record's headers: name and value, as spans of `bytes`.
    headers: Vec<(Range<usize>, Option<Range<usize>>)>,
}

/// Where one record's parts are in a [`RawRecords`].
#[derive(Debug)]
struct RawSpans {
    partition: i32,
    offset: i64,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
    /// A span of [`RawRecords::headers`].
    headers: Option<Range<usize>>,
}

impl RawRecords {
    pub(crate) fn push(&mut self, message: &impl Message) {
        let key = message.key().map(|key| self.copy(key));
        let payload = message.payload().map(|payload| self.copy(payload));
        let headers = readable_headers(message).map(|headers| {
            let first = self.headers.len();
            for (key, value) in headers {
                let name = self.copy(key.as_bytes());
                let value = value.map(|value| self.copy(value));
                self.headers.push((name, value));
            }
            first..self.headers.len()
        });
        self.records.push(RawSpans {
            partition: message.partition(),
            offset: message.offset(),
            key,
            payload,
            headers,
        });
    }

    /// Forgets every record, keeping the buffers for the next batch.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
        self.headers.clear();
    }

    /// Moves `other`'s records after this one's.
    pub(crate) fn append(&mut self, other: &mut RawRecords) {
        let (bytes, headers) = (self.bytes.len(), self.headers.len());
        let shift = |span: &Range<usize>, by: usize| span.start + by..span.end + by;
        self.bytes.append(&mut other.bytes);
        self.headers.extend(
            other
                .headers
                .drain(..)
                .map(|(name, value)| (shift(&name, bytes), value.map(|v| shift(&v, bytes)))),
        );
        self.records.extend(other.records.drain(..).map(|spans| RawSpans {
            key: spans.key.map(|k| shift(&k, bytes)),
            payload: spans.payload.map(|p| shift(&p, bytes)),
            headers: spans.headers.map(|h| shift(&h, headers)),
            ..spans
        }));
    }

    fn copy(&mut self, part: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(part);
        start..self.bytes.len()
    }

    /// The `index`th record pushed.
    pub(crate) fn get(&self, index: usize) -> RawRecord {
        let spans = &self.records[index];
        let bytes = |span: &Range<usize>| self.bytes[span.clone()].to_vec();
        RawRecord {
            partition: spans.partition,
            offset: spans.offset,
            key: spans.key.as_ref().map(bytes),
            headers: spans.headers.clone().map(|span| {
                self.headers[span]
                    .iter()
                    .map(|(name, value)| {
                        // Names were copied from `&str`s, whole.
                        let name = String::from_utf8_lossy(&self.bytes[name.clone()]).into_owned();
                        (name, value.as_ref().map(bytes))
                    })
                    .collect()
            }),
            payload: spans.payload.as_ref().map(bytes),
        }
    }
}

/// A record set aside by a projection, with why.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    record: RawRecord,
    event_type: Option<String>,
    aggregate_id: Option<Uuid>,
    error: String,
}

impl DeadLetter {
    /// `record` could not be decoded.
    pub(crate) fn undecodable(record: RawRecord, error: &service_kit::kafka::Error) -> Self {
        let aggregate_id = record
            .key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
            .and_then(|key| key.parse().ok());
        Self {
            event_type: record.event_type(),
            record,
            aggregate_id,
            error: printable(&error.to_string()),
        }
    }

    /// `event`, decoded from `record`, carries values PostgreSQL refused.
    pub(crate) fn refused(record: RawRecord, event: &LoggedEvent, error: &sqlx::Error) -> Self {
        Self {
            record,
            event_type: Some(event.envelope.message.message_type().to_owned()),
            aggregate_id: Some(event.envelope.message.aggregate_id()),
            error: printable(&describe(error)),
        }
    }

    pub(crate) fn partition(&self) -> i32 {
        self.record.partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.record.offset
    }

    pub(crate) fn error(&self) -> &str {
        &self.error
    }
}

/// A database error with its SQLSTATE, which says which rule refused the value.
fn describe(error: &sqlx::Error) -> String {
    match error.as_database_error().and_then(|e| e.code()) {
        Some(code) => format!("{error} (SQLSTATE {code})"),
        None => error.to_string(),
    }
}

/// Stores `dead` for `projection`, inside the caller's transaction.
pub(crate) async fn store(tx: &mut PgConnection, projection: &str, dead: &[DeadLetter]) -> Result<(), sqlx::Error> {
    for letter in dead {
        let record = &letter.record;
        let headers = record.headers.as_deref();
        let names: Option<Vec<&str>> = headers.map(|h| h.iter().map(|(name, _)| name.as_str()).collect());
        let values: Option<Vec<Option<&[u8]>>> = headers.map(|h| h.iter().map(|(_, value)| value.as_deref()).collect());
        sqlx::query(
            "INSERT INTO dead_letters (projection, partition, \"offset\", event_type, aggregate_id, error, \
             record_key, header_names, header_values, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(projection)
        .bind(record.partition)
        .bind(record.offset)
        .bind(&letter.event_type)
        .bind(letter.aggregate_id)
        .bind(&letter.error)
        .bind(&record.key)
        .bind(names)
        .bind(values)
        .bind(&record.payload)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Text as it may be stored and logged: control characters escaped (PostgreSQL text holds no
/// NUL, and a log entry stays on one line), and anything shaped like a card number masked,
/// since a decoder's message may quote the value it refused.
pub(crate) fn printable(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            if chars[i].is_control() {
                let _ = write!(out, "{}", chars[i].escape_unicode());
            } else {
                out.push(chars[i]);
            }
            i += 1;
            continue;
        }
        // A run of digits, single spaces or dashes allowed between them, as card numbers are
        // written. A UUID has too many digits to be one.
        let (start, mut end, mut digits) = (i, i, 0);
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(chars[end], ' ' | '-') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
                end += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits) {
            out.push_str("[redacted]");
        } else {
            out.extend(&chars[start..end]);
        }
        i = end;
    }
    out
}

/// One stored dead letter, without its record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub projection: String,
    pub partition: i32,
    pub offset: i64,
    pub event_type: Option<String>,
    pub aggregate_id: Option<Uuid>,
    pub error: String,
    pub dead_lettered_at: DateTime<Utc>,
}

/// The dead letters of `projection` (or of every projection), oldest first.
pub async fn list(pool: &PgPool, projection: Option<&str>) -> Result<Vec<StoredDeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, projection, partition, \"offset\", event_type, aggregate_id, error, dead_lettered_at \
         FROM dead_letters WHERE $1::text IS NULL OR projection = $1 ORDER BY id",
    )
    .bind(projection)
    .fetch_all(pool)
    .await
}

/// Why a retried dead letter stays where it is.
#[derive(Debug, Error)]
pub enum RetryError {
    #[error("no dead letter with id {0}")]
    NotFound(i64),
    #[error("dead letter {id} belongs to `{projection}`, which this binary does not run")]
    UnknownProjection { id: i64, projection: String },
    #[error("dead letter {id} still cannot be decoded: {reason}")]
    Undecodable { id: i64, reason: String },
    #[error("dead letter {id} is still refused by PostgreSQL: {reason}")]
    Refused { id: i64, reason: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The record columns of a dead letter.
#[derive(Debug, sqlx::FromRow)]
struct StoredRecord {
    partition: i32,
    offset: i64,
    record_key: Option<Vec<u8>>,
    header_names: Option<Vec<String>>,
    header_values: Option<Vec<Option<Vec<u8>>>>,
    payload: Option<Vec<u8>>,
}

impl From<StoredRecord> for RawRecord {
    fn from(stored: StoredRecord) -> Self {
        let values = stored.header_values.unwrap_or_default();
        Self {
            partition: stored.partition,
            offset: stored.offset,
            key: stored.record_key,
            headers: stored.header_names.map(|names| {
                names
                    .into_iter()
                    .zip(values.into_iter().chain(std::iter::repeat(None)))
                    .collect()
            }),
            payload: stored.payload,
        }
    }
}

/// Decodes dead letter `id` again and applies it to its projection, removing it in the same
/// transaction. The projection's checkpoint is long past the record, so it is applied as if it
/// came now: after the events that followed it on the log.
///
/// Takes the projection's tables and checkpoint rows first, as a runner's batch does, so the
/// retry and a batch of the live runner apply one after the other, never interleaved.
#[tracing::instrument(skip(pool, topic))]
pub async fn retry(pool: &PgPool, topic: &str, id: i64) -> Result<Projection, RetryError> {
    let mut tx = pool.begin().await?;
    let projection_name: String = sqlx::query_scalar("SELECT projection FROM dead_letters WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(RetryError::NotFound(id))?;
    let projection = Projection::ALL
        .into_iter()
        .find(|p| p.name() == projection_name)
        .ok_or_else(|| RetryError::UnknownProjection {
            id,
            projection: projection_name.clone(),
        })?;
    sqlx::query(&format!(
        "LOCK TABLE {} IN ROW EXCLUSIVE MODE",
        db::tables(projection).join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT 1 FROM projection_checkpoint WHERE projection = $1 FOR UPDATE")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let stored: StoredRecord = sqlx::query_as(
        "SELECT partition, \"offset\", record_key, header_names, header_values, payload \
         FROM dead_letters WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(RetryError::NotFound(id))?;
    let record = RawRecord::from(stored).message(topic);
    let envelope = Envelope::<Event>::from_kafka(&record).map_err(|error| RetryError::Undecodable {
        id,
        reason: printable(&error.to_string()),
    })?;
    let event = LoggedEvent {
        partition: record.partition(),
        offset: record.offset(),
        envelope,
    };
    match projection.apply(&mut tx, std::slice::from_ref(&event)).await {
        Ok(()) => {}
        Err(error) if is_data_error(&error) => {
            return Err(RetryError::Refused {
                id,
                reason: printable(&describe(&error)),
            })
        }
        Err(error) => return Err(error.into()),
    }
    sqlx::query("DELETE FROM dead_letters WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(projection)
}

/// Moves `projection`'s dead letters from schema `from` to schema `to`, replacing those there:
/// a rebuild's swap, inside its transaction. They get new ids in `to`.
pub(crate) async fn replace(
    tx: &mut PgConnection,
    projection: Projection,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DELETE FROM \"{to}\".dead_letters WHERE projection = $1"))
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let columns = "projection, partition, \"offset\", event_type, aggregate_id, error, \
                   record_key, header_names, header_values, payload, dead_lettered_at";
    sqlx::query(&format!(
        "INSERT INTO \"{to}\".dead_letters ({columns}) \
         SELECT {columns} FROM \"{from}\".dead_letters WHERE projection = $1 ORDER BY id"
    ))
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A record's headers for keeping; one whose header names are not UTF-8 is kept without them
/// (it can never decode, and its error says why).
fn readable_headers(message: &impl Message) -> Option<HeaderList<'_>> {
    service_kit::kafka::envelope::headers(message).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_escapes_control_characters() {
        assert_eq!(printable("bad\u{0}name\nnext"), "bad\\u{0}name\\u{a}next");
        assert_eq!(printable("Zoë ☕"), "Zoë ☕");
    }

    #[test]
    fn printable_text_masks_what_looks_like_a_card_number() {
        assert_eq!(
            printable("invalid value: string \"4111111111111111\", expected"),
            "invalid value: string \"[redacted]\", expected"
        );
        assert_eq!(printable("pan 4111 1111 1111 1111!"), "pan [redacted]!");
        assert_eq!(printable("pan 4111-1111-1111-1111"), "pan [redacted]");
    }

    #[test]
    fn printable_text_keeps_ids_offsets_and_times() {
        for text in [
            "message at t.orderstream.events/2@1234567 could not be decoded",
            "order 00000000-0000-0000-0000-000000000001",
            "order 12345678-1234-1234-1234-123456789012",
            "placed at 2025-01-19T15:04:05Z, 123456789012 cents",
        ] {
            assert_eq!(printable(text), text);
        }
    }

    fn message(key: Option<&[u8]>, headers: Option<OwnedHeaders>, payload: Option<&[u8]>, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            payload.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            "events".to_owned(),
            Timestamp::NotAvailable,
            2,
            offset,
            headers,
        )
    }

    #[test]
    fn a_batch_keeps_each_record_as_it_was_on_the_log() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_type",
                value: Some("orderstream.order.placed.v2"),
            })
            .insert(Header::<&str> {
                key: "empty",
                value: None,
            })
            .insert(Header {
                key: "bytes",
                value: Some(&[0u8, 255, 1][..]),
            });
        let messages = [
            message(Some(b"key"), Some(headers), Some(b"{\"a\":1}"), 7),
            message(None, None, None, 8),
            message(Some(b""), Some(OwnedHeaders::new()), Some(b"\0"), 9),
        ];
        let mut raw = RawRecords::default();
        for message in &messages {
            raw.push(message);
        }
        for (i, message) in messages.iter().enumerate() {
            assert_eq!(raw.get(i), RawRecord::of(message));
        }
        let first = raw.get(0);
        assert_eq!(first.event_type().as_deref(), Some("orderstream.order.placed.v2"));
        assert_eq!(
            first.headers.as_deref().map(|h| h[2].clone()),
            Some(("bytes".to_owned(), Some(vec![0, 255, 1])))
        );
        assert_eq!(raw.get(1).headers, None);
        // Back to a message, it reads as the original.
        let again = first.message("events");
        assert_eq!(RawRecord::of(&again), first);
    }

    #[test]
    fn only_values_postgresql_refuses_are_data_errors() {
        assert!(!is_data_error(&sqlx::Error::PoolTimedOut));
        assert!(!is_data_error(&sqlx::Error::Io(std::io::Error::other(
            "connection reset"
        ))));
        assert!(is_data_error(&sqlx::Error::Encode("out of range".into())));
    }
}
