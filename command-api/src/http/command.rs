//! What every command request carries besides its body: ids derived from the
//! `Idempotency-Key`, and the caller's trace context.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use domain::Command;
use service_kit::kafka::Envelope;
use uuid::Uuid;

use super::ApiError;

/// Namespaces turning an `Idempotency-Key` into ids, so a retry lands on the same aggregate
/// with the same command id and the decider recognises it.
const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_636d_6401);
const AGGREGATE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_6f72_6401);
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// The ids and trace context of one command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandRequest {
    /// `{kind}:{Idempotency-Key}`, scoping a key to one kind of request.
    scoped_key: Option<String>,
    pub(super) command_id: Uuid,
    traceparent: String,
}

impl CommandRequest {
    /// Reads the headers of a request of `kind` (e.g. `orders`, `refunds:{purchase_id}`).
    pub(super) fn from_headers(headers: &HeaderMap, kind: &str) -> Result<Self, ApiError> {
        let scoped_key = idempotency_key(headers)?.map(|key| format!("{kind}:{key}"));
        let command_id = match &scoped_key {
            Some(key) => Uuid::new_v5(&COMMAND_ID_NAMESPACE, key.as_bytes()),
            None => Uuid::new_v4(),
        };
        Ok(Self {
            scoped_key,
            command_id,
            traceparent: traceparent(headers),
        })
    }

    /// The id of the aggregate the command creates: the client's, else derived from the
    /// idempotency key, else fresh.
    pub(super) fn new_id(&self, given: Option<Uuid>) -> Uuid {
        given.unwrap_or_else(|| match &self.scoped_key {
            Some(key) => Uuid::new_v5(&AGGREGATE_ID_NAMESPACE, key.as_bytes()),
            None => Uuid::new_v4(),
        })
    }

    /// Wraps `command` for the log, accepted at `now`.
    pub(super) fn envelope(&self, command: Command, now: DateTime<Utc>) -> Envelope<Command> {
        Envelope {
            id: self.command_id,
            time: now,
            sequence: None,
            causation_id: None,
            correlation_id: self.command_id,
            traceparent: Some(self.traceparent.clone()),
            message: command,
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::InvalidHeader {
        header: "Idempotency-Key",
        detail: detail.to_owned(),
    };
    let key = value.to_str().map_err(|_| invalid("must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(invalid("must hold 1 to 200 characters"));
    }
    Ok(Some(key.to_owned()))
}

/// The caller's W3C trace context when it sent a well-formed one, else a new trace.
fn traceparent(headers: &HeaderMap) -> String {
    let given = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_traceparent(value));
    match given {
        Some(value) => value.to_owned(),
        None => {
            let trace = Uuid::new_v4().simple().to_string();
            let span = &Uuid::new_v4().simple().to_string()[..16];
            format!("00-{trace}-{span}-01")
        }
    }
}

fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4 && hex(parts[0], 2) && hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_key(key: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_static(key));
        headers
    }

    #[test]
    fn an_idempotency_key_always_names_the_same_command_and_aggregate() {
        let first = CommandRequest::from_headers(&with_key("key-1"), "orders").unwrap();
        let again = CommandRequest::from_headers(&with_key("key-1"), "orders").unwrap();
        assert_eq!(first.command_id, again.command_id);
        assert_eq!(first.new_id(None), again.new_id(None));
        assert_ne!(first.command_id, first.new_id(None));
        let other_key = CommandRequest::from_headers(&with_key("key-2"), "orders").unwrap();
        assert_ne!(first.command_id, other_key.command_id);
        let other_kind = CommandRequest::from_headers(&with_key("key-1"), "purchases").unwrap();
        assert_ne!(
            first.command_id, other_kind.command_id,
            "a key is scoped to its kind of request"
        );
    }

    #[test]
    fn a_given_id_wins_over_the_derived_one() {
        let given = Uuid::from_u128(42);
        let keyed = CommandRequest::from_headers(&with_key("k"), "orders").unwrap();
        assert_eq!(keyed.new_id(Some(given)), given);
        let plain = CommandRequest::from_headers(&HeaderMap::new(), "orders").unwrap();
        assert_eq!(plain.new_id(Some(given)), given);
        assert_ne!(
            plain.new_id(None),
            plain.new_id(None),
            "without a key every id is fresh"
        );
    }

    #[test]
    fn traceparent_is_kept_only_when_well_formed() {
        let mut headers = HeaderMap::new();
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(valid));
        assert_eq!(traceparent(&headers), valid);
        headers.insert("traceparent", HeaderValue::from_static("garbage"));
        assert!(is_traceparent(&traceparent(&headers)));
    }
}
