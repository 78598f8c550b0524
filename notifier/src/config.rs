//! notifier settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::{ArgAction, Parser};
use service_kit::duration;
use service_kit::edge::DatabaseApiArgs;
use service_kit::kafka::KafkaArgs;

use crate::retry::RetryPolicy;

#[derive(Debug, Clone, Parser)]
// Named after the crate and described by its manifest, so `--help` says what the package says.
#[command(version, about)]
pub struct Config {
    /// Address the HTTP API listens on; loopback unless told otherwise (`0.0.0.0:8087` in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8087")]
    pub listen_addr: String,

    #[command(flatten)]
    pub api: DatabaseApiArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// How webhooks are accepted and delivered.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Accept webhook URLs on loopback, private, link-local and other internal addresses. Only
    /// for local development and tests: in production it would let any user make the notifier
    /// post into the internal network.
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE", default_value_t = false, action = ArgAction::Set)]
    pub webhooks_allow_private: bool,

    /// Webhooks one user may have at once: each receives its owner's events, so every one more
    /// is one more delivery of each.
    #[arg(long, env = "WEBHOOKS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhooks_per_user: u32,

    /// Longest wait for one delivery attempt (connect, send, answer).
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "10s", value_parser = duration::positive)]
    pub webhook_timeout: Duration,

    /// First retry delay: attempt n waits a random time up to base × 2^(n-1) (full jitter).
    #[arg(long, env = "WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = duration::positive)]
    pub webhook_retry_base: Duration,

    /// Longest retry delay.
    #[arg(long, env = "WEBHOOK_RETRY_CAP", default_value = "1h", value_parser = duration::positive)]
    pub webhook_retry_cap: Duration,

    /// How long after its event a delivery is retried before it is marked `failed`.
    #[arg(long, env = "WEBHOOK_RETRY_HORIZON", default_value = "24h", value_parser = duration::parse)]
    pub webhook_retry_horizon: Duration,

    /// How long a leased delivery is reserved for the replica that leased it; after that,
    /// another replica may take it (the leaseholder died). Longer than twice the attempt
    /// timeout: a leased delivery may wait behind one attempt before its own.
    #[arg(long, env = "WEBHOOK_LEASE", default_value = "60s", value_parser = duration::positive)]
    pub webhook_lease: Duration,

    /// Deliveries leased at once in this process, over all webhooks (each webhook runs its share
    /// and has as many queued right behind).
    #[arg(long, env = "WEBHOOK_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_max_in_flight: u32,

    /// Deliveries in flight at once to one webhook, so a slow endpoint holds back only its own.
    #[arg(long, env = "WEBHOOK_MAX_IN_FLIGHT_PER_WEBHOOK", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub webhook_max_in_flight_per_webhook: u32,

    /// How often the dispatcher looks for due deliveries when nothing woke it sooner (a new
    /// event, a finished attempt).
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL", default_value = "500ms", value_parser = duration::positive)]
    pub webhook_poll_interval: Duration,

    /// Events per fan-out transaction, at most.
    #[arg(long, env = "FANOUT_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub fanout_batch_size: u32,

    /// How long a fan-out batch waits for more events after its first.
    #[arg(long, env = "FANOUT_BATCH_LINGER", default_value = "20ms", value_parser = duration::parse)]
    pub fanout_batch_linger: Duration,
}

impl WebhookArgs {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.webhook_retry_base,
            cap: self.webhook_retry_cap,
            horizon: self.webhook_retry_horizon,
        }
    }
}

#[cfg(test)]
mod tests {
    use service_kit::testing::assert_settings_refused;

    use super::Config;

    #[test]
    fn settings_that_could_never_work_are_refused_as_they_are_read() {
        assert_settings_refused::<Config>(&[
            ("--webhook-timeout", "0s"),
            ("--webhook-retry-base", "0ms"),
            ("--webhook-retry-cap", "0s"),
            ("--webhook-lease", "0s"),
            ("--webhook-poll-interval", "0ms"),
            ("--webhooks-per-user", "0"),
        ]);
    }
}
