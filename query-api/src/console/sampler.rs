//! One snapshot a second, published to the console's live streams while at least one is open:
//! nobody watching costs nothing but a timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::snapshot::{LogTotals, Snapshot};
use super::Console;

/// Publishes the console's snapshots every `period` while someone subscribes.
#[derive(Debug)]
pub(crate) struct Sampler {
    console: Console,
    period: Duration,
}

impl Sampler {
    pub(crate) fn new(console: Console, period: Duration) -> Self {
        Self { console, period }
    }

    /// Runs until the future is dropped.
    pub(crate) async fn run(self) {
        let mut ticks = tokio::time::interval(self.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut previous: Option<LogTotals> = None;
        loop {
            ticks.tick().await;
            if self.console.latest.receiver_count() == 0 {
                // Rates across a pause would average over it.
                previous = None;
                continue;
            }
            let json = match Snapshot::gather(&self.console, previous.as_ref()).await {
                Ok(snapshot) => {
                    previous = Some(snapshot.totals);
                    serde_json::to_string(&snapshot)
                }
                Err(error) => {
                    tracing::warn!(%error, "console snapshot failed");
                    serde_json::to_string(&serde_json::json!({ "error": error.to_string() }))
                }
            };
            match json {
                Ok(json) => {
                    self.console.latest.send_replace(Arc::from(json));
                }
                Err(error) => tracing::error!(%error, "console snapshot is not JSON"),
            }
        }
    }
}
