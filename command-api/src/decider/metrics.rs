//! What the decider counts and times for `/metrics`.

service_kit::metric_set! {
    /// Counts and timings that `/metrics` reports.
    pub struct DeciderMetrics {
        pub(super) commands: Counter("orderstream_decider_commands_total", "Commands decided"),
        pub(super) rejections: Counter("orderstream_decider_rejections_total", "Commands rejected"),
        pub(super) refusals: Counter(
            "orderstream_decider_refusals_total",
            "Commands refused undecided: idempotency key reused, aggregate quarantined, or undecodable",
        ),
        pub(super) undecodable_commands: Counter(
            "orderstream_decider_undecodable_commands_total",
            "Commands that did not decode (refused when their id was readable, else skipped)",
        ),
        pub(super) undecodable_events: Counter(
            "orderstream_decider_undecodable_events_total",
            "Events or state changelog records that did not decode on restore (their aggregate quarantined when named, else skipped)",
        ),
        pub(super) undecodable_verdicts: Counter(
            "orderstream_decider_undecodable_verdicts_total",
            "Verdict records that did not decode on restore (skipped)",
        ),
        pub(super) transactions: Counter("orderstream_decider_transactions_total", "Kafka transactions committed"),
        pub(super) restored_changelog: Counter(
            "orderstream_decider_restored_changelog_records_total",
            "State changelog records read by restores",
        ),
        pub(super) restored_events: Counter(
            "orderstream_decider_restored_events_total",
            "Events folded by restores of partitions without a complete changelog",
        ),
        pub(super) restored_verdicts: Counter(
            "orderstream_decider_restored_verdicts_total",
            "Verdict records read by restores",
        ),
        pub(super) batch_size: Histogram(
            "orderstream_decider_batch_size",
            "Commands decided in one Kafka transaction",
        ),
        pub(super) commit_seconds: Histogram(
            "orderstream_decider_commit_seconds",
            "How long committing one Kafka transaction (events, verdicts, changelog, offsets) took",
        ),
        pub(super) ready: Gauge(
            "orderstream_decider_ready",
            "1 while the decider has joined its group and restored every partition it owns, else 0 (what /ready reports)",
        ),
        pub(super) partitions_owned: Gauge(
            "orderstream_decider_partitions_owned",
            "Command partitions this decider has restored and decides",
        ),
    }
}
