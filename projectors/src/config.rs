//! projectors settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use service_kit::database::DatabaseArgs;
use service_kit::kafka::KafkaArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "projectors",
    version,
    about = "orderstream's projectors: events into PostgreSQL read models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run every projection.
    Run(Config),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of `/health`, `/ready` and `/metrics`.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8086")]
    pub listen_addr: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Most events folded into one PostgreSQL transaction.
    #[arg(long, env = "PROJECTOR_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,

    /// How long a projection waits to fill a batch after its first event, in milliseconds.
    #[arg(long, env = "PROJECTOR_BATCH_LINGER_MS", default_value_t = 20)]
    pub batch_linger_ms: u64,
}

impl Config {
    pub fn batch_linger(&self) -> Duration {
        Duration::from_millis(self.batch_linger_ms)
    }
}
