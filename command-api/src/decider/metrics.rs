//! What the decider counts for `/metrics`.

use std::sync::Arc;

use service_kit::metrics::{Counter, Gauge, Registry};

/// Counts that `/metrics` reports.
#[derive(Debug, Clone)]
pub struct DeciderMetrics {
    pub(super) commands: Arc<Counter>,
    pub(super) rejections: Arc<Counter>,
    pub(super) refusals: Arc<Counter>,
    pub(super) undecodable_commands: Arc<Counter>,
    pub(super) undecodable_events: Arc<Counter>,
    pub(super) undecodable_verdicts: Arc<Counter>,
    pub(super) transactions: Arc<Counter>,
    pub(super) restored_changelog: Arc<Counter>,
    pub(super) restored_events: Arc<Counter>,
    pub(super) restored_verdicts: Arc<Counter>,
    pub(super) partitions_owned: Arc<Gauge>,
}

impl DeciderMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            commands: registry.counter("orderstream_decider_commands_total", "", "Commands decided"),
            rejections: registry.counter("orderstream_decider_rejections_total", "", "Commands rejected"),
            refusals: registry.counter(
                "orderstream_decider_refusals_total",
                "",
                "Commands refused undecided: idempotency key reused, aggregate quarantined, or undecodable",
            ),
            undecodable_commands: registry.counter(
                "orderstream_decider_undecodable_commands_total",
                "",
                "Commands that did not decode (refused when their id was readable, else skipped)",
            ),
            undecodable_events: registry.counter(
                "orderstream_decider_undecodable_events_total",
                "",
                "Events or state changelog records that did not decode on restore (their aggregate quarantined when named, else skipped)",
            ),
            undecodable_verdicts: registry.counter(
                "orderstream_decider_undecodable_verdicts_total",
                "",
                "Verdict records that did not decode on restore (skipped)",
            ),
            transactions: registry.counter(
                "orderstream_decider_transactions_total",
                "",
                "Kafka transactions committed",
            ),
            restored_changelog: registry.counter(
                "orderstream_decider_restored_changelog_records_total",
                "",
                "State changelog records read by restores",
            ),
            restored_events: registry.counter(
                "orderstream_decider_restored_events_total",
                "",
                "Events folded by restores of partitions without a complete changelog",
            ),
            restored_verdicts: registry.counter(
                "orderstream_decider_restored_verdicts_total",
                "",
                "Verdict records read by restores",
            ),
            partitions_owned: registry.gauge(
                "orderstream_decider_partitions_owned",
                "",
                "Command partitions this decider has restored and decides",
            ),
        }
    }
}
