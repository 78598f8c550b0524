//! What the decider knows about one aggregate, and how long it remembers its verdicts.

use std::time::Duration;

use domain::{Aggregates, Decider as _, Event, State};
use serde::{Deserialize, Serialize};
use service_kit::kafka::topics::COMMAND_RETENTION;
use service_kit::kafka::Envelope;

/// How long a verdict is remembered: as long as the verdicts topic keeps it, which is as long as
/// the commands topic keeps the commands.
pub(crate) const IDEMPOTENCY_HORIZON: Duration = COMMAND_RETENTION;

/// One aggregate's state and version (the `ce_sequence` of its last event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AggregateEntry {
    pub(crate) state: State,
    pub(crate) version: u64,
}

impl AggregateEntry {
    /// Folds one event read back from the events log.
    pub(crate) fn apply(&mut self, envelope: &Envelope<Event>) {
        self.version = envelope.sequence.unwrap_or(self.version + 1);
        self.state = Aggregates::evolve(std::mem::take(&mut self.state), &envelope.message);
    }
}

/// The oldest decision time still within the horizon, at `now_ms`.
pub(crate) fn horizon_cutoff(now_ms: i64) -> i64 {
    now_ms - IDEMPOTENCY_HORIZON.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_is_the_commands_retention() {
        assert_eq!(horizon_cutoff(IDEMPOTENCY_HORIZON.as_millis() as i64 + 5), 5);
    }
}
