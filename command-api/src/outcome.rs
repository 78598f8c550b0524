//! The verdict on one command, written by the decider to the outcomes topic (key: command id) in
//! the same transaction as the events, and read by whichever edge instance is waiting for it.

use domain::Rejection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub command_id: Uuid,
    pub aggregate_id: Uuid,
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
    Rejected {
        rejection: Rejection,
    },
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
}
