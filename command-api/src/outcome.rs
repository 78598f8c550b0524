//! The verdict on one command, written by the decider to the outcomes topic (key: command id) in
//! the same transaction as the events, and read by whichever edge instance is waiting for it.
//! Accepted and rejected verdicts also go to the verdicts topic, the decider's memory of what it
//! decided.

use domain::Rejection;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// The header carrying a command's request digest (see [`Outcome::request_digest`]).
pub const REQUEST_DIGEST_HEADER: &str = "ce_requestdigest";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub command_id: Uuid,
    /// The aggregate the command addressed; nil when a command that does not decode has no
    /// readable key.
    pub aggregate_id: Uuid,
    /// Keyed digest of the HTTP request (route and body) this verdict answers, when the request
    /// carried an `Idempotency-Key`: the same key with another request is refused, and a waiter
    /// only takes the verdict of its own request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Accepted {
        events: Vec<WrittenEvent>,
        /// Positions a read must wait for to see these events.
        consistency_token: String,
    },
    /// The domain's rules refused the command.
    Rejected { rejection: Rejection },
    /// The decider could not judge the command on its merits; nothing is remembered, so the
    /// same command may be decided once the cause is gone.
    Refused { refusal: Refusal },
}

/// Why the decider did not decide a command. Kept apart from the domain's rejections: these are
/// about the log and the request, not about business rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The command id (from the `Idempotency-Key`) was first decided for a different request.
    #[error("this Idempotency-Key was first used with a different request")]
    IdempotencyKeyReused,
    /// The aggregate's history holds an event that does not decode, so its state is unknown.
    #[error("aggregate {aggregate_id} is quarantined: its history holds an event that does not decode")]
    AggregateQuarantined { aggregate_id: Uuid },
    /// The command on the log does not decode (e.g. written by a newer or broken producer).
    #[error("the command could not be decoded by the decider")]
    Undecodable,
}

/// Where an accepted command's event landed on the events topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WrittenEvent {
    /// The CloudEvents type, e.g. `orderstream.order.placed.v2`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub sequence: u64,
    pub partition: i32,
    pub offset: i64,
}

impl Outcome {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("outcome serialises to JSON")
    }

    /// Whether a request with `digest` may take this verdict as its own. A side without a digest
    /// (a command without an `Idempotency-Key`, or from a reaction) matches anything: its id is
    /// fresh or derived from an event, never shared with another request.
    pub fn answers(&self, digest: Option<&str>) -> bool {
        same_request(self.request_digest.as_deref(), digest)
    }
}

/// Whether two commands under one id come from the same request, as far as their digests tell.
pub fn same_request(first: Option<&str>, other: Option<&str>) -> bool {
    match (first, other) {
        (Some(first), Some(other)) => first == other,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(digest: Option<&str>, verdict: Verdict) -> Outcome {
        Outcome {
            command_id: Uuid::from_u128(1),
            aggregate_id: Uuid::from_u128(2),
            request_digest: digest.map(str::to_owned),
            verdict,
        }
    }

    #[test]
    fn a_verdict_answers_only_the_request_it_was_given_for() {
        let verdict = Verdict::Refused {
            refusal: Refusal::IdempotencyKeyReused,
        };
        let keyed = outcome(Some("aa"), verdict.clone());
        assert!(keyed.answers(Some("aa")));
        assert!(!keyed.answers(Some("bb")));
        assert!(keyed.answers(None));
        assert!(outcome(None, verdict).answers(Some("bb")));
    }

    #[test]
    fn refusals_round_trip_and_old_outcomes_without_a_digest_still_read() {
        let refused = outcome(
            Some("aa"),
            Verdict::Refused {
                refusal: Refusal::AggregateQuarantined {
                    aggregate_id: Uuid::from_u128(2),
                },
            },
        );
        let json: serde_json::Value = serde_json::from_slice(&refused.encode()).unwrap();
        assert_eq!(json["verdict"], "refused");
        assert_eq!(json["refusal"]["reason"], "aggregate_quarantined");
        assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), refused);

        let old = serde_json::json!({
            "command_id": Uuid::from_u128(1),
            "aggregate_id": Uuid::from_u128(2),
            "verdict": "accepted",
            "events": [],
            "consistency_token": "t",
        });
        assert_eq!(serde_json::from_value::<Outcome>(old).unwrap().request_digest, None);
    }
}
