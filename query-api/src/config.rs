//! query-api settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::Parser;
use service_kit::auth::AuthArgs;
use service_kit::database::DatabaseArgs;
use service_kit::edge::EdgeArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "query-api",
    version,
    about = "orderstream's read side over the projected read models"
)]
pub struct Config {
    /// Address the HTTP API listens on; loopback unless told otherwise (`0.0.0.0:8085` in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8085")]
    pub listen_addr: String,

    #[command(flatten)]
    pub edge: EdgeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// Longest wait for projections to reach a consistency token, in milliseconds.
    #[arg(long, env = "CONSISTENCY_WAIT_MS", default_value_t = 5000)]
    pub consistency_wait_ms: u64,
}

impl Config {
    pub fn consistency_wait(&self) -> Duration {
        Duration::from_millis(self.consistency_wait_ms)
    }
}
