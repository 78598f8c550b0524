//! The CloudEvents 1.0 envelope in Kafka binary mode: the value is the message's JSON data and
//! the attributes travel as `ce_*` headers, so any CloudEvents consumer can read the log.

use chrono::{DateTime, Utc};
use domain::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use uuid::Uuid;

use super::{Error, Result};
use crate::telemetry::{TraceContext, TRACEPARENT, TRACESTATE};

/// Every message orderstream writes names this source.
pub const SOURCE: &str = "orderstream/command-api";

/// A command or event with its CloudEvents attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<M> {
    /// `ce_id`: the command id for commands, a fresh id for each event.
    pub id: Uuid,
    /// `ce_time`: when the edge accepted the command.
    pub time: DateTime<Utc>,
    /// `ce_sequence`: the aggregate's version after this event; absent on commands.
    pub sequence: Option<u64>,
    /// `ce_causationid`: the command that caused this event; absent on commands.
    pub causation_id: Option<Uuid>,
    /// `ce_correlationid`: the id shared by everything one client request set off.
    pub correlation_id: Uuid,
    /// `traceparent` and `tracestate`: the W3C trace context it was written in. While traces
    /// are exported, [`Envelope::headers`] writes the current span's instead.
    pub trace: TraceContext,
    pub message: M,
}

impl<M: Message> Envelope<M> {
    /// The Kafka key: the aggregate id, so an aggregate's messages stay in one partition, in order.
    pub fn key(&self) -> String {
        self.message.aggregate_id().to_string()
    }

    pub fn payload(&self) -> Vec<u8> {
        self.message.encode()
    }

    /// The CloudEvents attributes and the trace context (see [`Envelope::trace`]) as headers.
    pub fn headers(&self) -> OwnedHeaders {
        let id = self.id.to_string();
        let time = self.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let subject = self.key();
        let correlation = self.correlation_id.to_string();
        let sequence = self.sequence.map(|s| s.to_string());
        let causation = self.causation_id.map(|c| c.to_string());
        let trace = self.trace.to_send();
        let mut headers = OwnedHeaders::new_with_capacity(12)
            .insert(text("ce_specversion", "1.0"))
            .insert(text("ce_id", &id))
            .insert(text("ce_source", SOURCE))
            .insert(text("ce_type", self.message.message_type()))
            .insert(text("ce_time", &time))
            .insert(text("ce_subject", &subject))
            .insert(text("content-type", "application/json"))
            .insert(text("ce_correlationid", &correlation));
        if let Some(sequence) = &sequence {
            headers = headers.insert(text("ce_sequence", sequence));
        }
        if let Some(causation) = &causation {
            headers = headers.insert(text("ce_causationid", causation));
        }
        with_trace(headers, &trace)
    }

    /// Reads an envelope back from a Kafka message, decoding (and upcasting) its data.
    pub fn from_kafka(record: &impl rdkafka::Message) -> Result<Self> {
        let at = Position::of(record);
        let headers = headers(record)
            .map_err(|_| at.invalid("header names"))?
            .ok_or_else(|| at.missing("ce_type"))?;
        let header = |name: &'static str| -> Result<Option<&str>> {
            headers
                .iter()
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| *value)
                .map(|v| std::str::from_utf8(v).map_err(|_| at.invalid(name)))
                .transpose()
        };
        let required = |name: &'static str| header(name)?.ok_or_else(|| at.missing(name));
        let parsed = |name: &'static str, value: &str| -> Result<Uuid> { value.parse().map_err(|_| at.invalid(name)) };

        let message_type = required("ce_type")?;
        let message =
            M::decode(message_type, record.payload().unwrap_or_default()).map_err(|source| Error::Decode {
                topic: at.topic.clone(),
                partition: at.partition,
                offset: at.offset,
                source,
            })?;
        Ok(Self {
            id: parsed("ce_id", required("ce_id")?)?,
            time: DateTime::parse_from_rfc3339(required("ce_time")?)
                .map_err(|_| at.invalid("ce_time"))?
                .with_timezone(&Utc),
            sequence: header("ce_sequence")?
                .map(|s| s.parse().map_err(|_| at.invalid("ce_sequence")))
                .transpose()?,
            causation_id: header("ce_causationid")?
                .map(|c| parsed("ce_causationid", c))
                .transpose()?,
            correlation_id: parsed("ce_correlationid", required("ce_correlationid")?)?,
            trace: TraceContext {
                traceparent: header(TRACEPARENT)?.map(str::to_owned),
                tracestate: header(TRACESTATE)?.map(str::to_owned),
            },
            message,
        })
    }
}

/// The trace context a record carries, read without decoding the rest of it.
pub fn trace_context(record: &impl rdkafka::Message) -> TraceContext {
    TraceContext {
        traceparent: header(record, TRACEPARENT).map(str::to_owned),
        tracestate: header(record, TRACESTATE).map(str::to_owned),
    }
}

/// The `ce_type` of a record, read without decoding its data: lets a consumer skip the types it
/// does not handle cheaply.
pub fn message_type(record: &impl rdkafka::Message) -> Option<&str> {
    header(record, "ce_type")
}

/// The text of header `name` of a record, if it has one in UTF-8: lets a consumer read what it
/// can of a record that does not decode as a whole.
pub fn header<'a>(record: &'a impl rdkafka::Message, name: &str) -> Option<&'a str> {
    headers(record)
        .ok()??
        .into_iter()
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// A record's headers, name and value, or `None` when it has none.
///
/// Any producer may write a header name that is not UTF-8, and rdkafka panics on reading one;
/// that panic is caught here and told as an error, so such a record is one bad record and not
/// the end of the consumer that read it.
pub fn headers(record: &impl rdkafka::Message) -> Result<Option<HeaderList<'_>>, UnreadableHeaders> {
    let Some(headers) = record.headers() else {
        return Ok(None);
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        headers.iter().map(|h| (h.key, h.value)).collect::<Vec<_>>()
    }))
    .map(Some)
    .map_err(|_| UnreadableHeaders)
}

/// A record's headers in order: name, and value when it has one.
pub type HeaderList<'a> = Vec<(&'a str, Option<&'a [u8]>)>;

/// A record with a header name that is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a header name is not UTF-8")]
pub struct UnreadableHeaders;

/// The trace context alone as headers, for a record that is not an envelope (a command's
/// outcome and verdict), so a consumer of it can continue the command's trace; `None` without one.
pub fn trace_headers(trace: &TraceContext) -> Option<OwnedHeaders> {
    trace
        .traceparent
        .is_some()
        .then(|| with_trace(OwnedHeaders::new_with_capacity(2), trace))
}

fn with_trace(mut headers: OwnedHeaders, trace: &TraceContext) -> OwnedHeaders {
    if let Some(traceparent) = &trace.traceparent {
        headers = headers.insert(text(TRACEPARENT, traceparent));
    }
    if let Some(tracestate) = &trace.tracestate {
        headers = headers.insert(text(TRACESTATE, tracestate));
    }
    headers
}

fn text<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Where a message sits, for error messages.
struct Position {
    topic: String,
    partition: i32,
    offset: i64,
}

impl Position {
    fn of(record: &impl rdkafka::Message) -> Self {
        Self {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset(),
        }
    }

    fn missing(&self, header: &'static str) -> Error {
        Error::MissingHeader {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            header,
        }
    }

    fn invalid(&self, header: &'static str) -> Error {
        Error::InvalidHeader {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            header,
        }
    }
}
