//! query-api settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::Parser;
use service_kit::duration;
use service_kit::edge::DatabaseApiArgs;

#[derive(Debug, Clone, Parser)]
// Named after the crate and described by its manifest, so `--help` says what the package says.
#[command(version, about)]
pub struct Config {
    /// Address the HTTP API listens on; loopback unless told otherwise (`0.0.0.0:8085` in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8085")]
    pub listen_addr: String,

    #[command(flatten)]
    pub api: DatabaseApiArgs,

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
