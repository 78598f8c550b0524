//! query-api settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::Parser;
use service_kit::duration;
use service_kit::edge::DatabaseApiArgs;
use service_kit::kafka::KafkaArgs;

#[derive(Debug, Clone, Parser)]
// Named after the crate and described by its manifest, so `--help` says what the package says.
#[command(version, about)]
pub struct Config {
    /// Address the HTTP API listens on; loopback unless told otherwise (`0.0.0.0:8085` in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8085")]
    pub listen_addr: String,

    #[command(flatten)]
    pub api: DatabaseApiArgs,

    /// Where the console reads partitions, log ends and the deciders' group from.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The console's link to a trace, `{trace_id}` replaced by the event's trace id (Jaeger:
    /// `http://localhost:16686/trace/{trace_id}`); empty for no link.
    #[arg(long, env = "CONSOLE_TRACE_URL", default_value = "")]
    pub console_trace_url: String,

    /// How often the console's live stream sends a snapshot (`1s`).
    #[arg(long, env = "CONSOLE_INTERVAL", default_value = "1s", value_parser = duration::positive)]
    pub console_interval: Duration,

    /// Longest wait for projections to reach a consistency token (`5s`, `500ms`).
    #[arg(long, env = "CONSISTENCY_WAIT", default_value = "5s", value_parser = duration::parse)]
    pub consistency_wait: Duration,

    /// Deprecated: CONSISTENCY_WAIT in milliseconds.
    #[arg(long, env = "CONSISTENCY_WAIT_MS", conflicts_with = "consistency_wait")]
    pub consistency_wait_ms: Option<u64>,
}

impl Config {
    pub fn consistency_wait(&self) -> Duration {
        duration::or_deprecated_ms(self.consistency_wait, self.consistency_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use service_kit::testing::assert_settings_refused;

    use super::Config;

    #[test]
    fn settings_that_could_never_work_are_refused_as_they_are_read() {
        assert_settings_refused::<Config>(&[("--console-interval", "0s"), ("--database-max-connections", "0")]);
    }
}
