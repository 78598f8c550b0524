//! projectors settings: environment first, flags second; `--help` lists them all.

use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use service_kit::database::DatabaseArgs;
use service_kit::duration;
use service_kit::kafka::{KafkaArgs, Topics};

use crate::runner::RunnerSettings;

#[derive(Debug, Clone, Parser)]
// Named after the crate and described by its manifest, so `--help` says what the package says.
#[command(version, about)]
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
    /// Rebuild projections from the start of the log beside the live ones, then swap them in
    /// in one transaction; `projectors run` may keep running meanwhile.
    Rebuild(RebuildConfig),
    /// Show each projection's checkpoint and lag per partition, its dead letters, and any
    /// rebuild under way.
    Status {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List or retry the records the projections set aside as dead letters.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
}

impl Command {
    /// The database the command works on: every command has one.
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            Self::Run(config) => &config.projections.database,
            Self::Rebuild(config) => &config.projections.database,
            Self::Migrate { database }
            | Self::Status { database, .. }
            | Self::DeadLetters(DeadLetterCommand::List { database, .. })
            | Self::DeadLetters(DeadLetterCommand::Retry { database, .. }) => database,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeadLetterCommand {
    /// Print the dead letters, oldest first.
    List {
        /// Only those of this projection: track_user, order_status, order_history,
        /// purchases or products.
        #[arg(long)]
        projection: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Decode a dead letter's record again and apply it to its projection, once the cause is
    /// fixed; it leaves the table when it applies, and stays with the error otherwise.
    Retry {
        /// The dead letter's id, as `list` prints it.
        id: i64,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RebuildConfig {
    /// The projection to rebuild: track_user, order_status, order_history, purchases or
    /// products.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub projection: Option<String>,

    /// Rebuild every projection, in one pass over the log; each is swapped in when done.
    #[arg(long)]
    pub all: bool,

    /// Keep the replaced tables, in schema `<DATABASE_SCHEMA>__old_<timestamp>`, instead of
    /// dropping them.
    #[arg(long)]
    pub keep_old: bool,

    /// Serve the rebuild's progress on `/metrics` at this address while it runs (for
    /// Prometheus: `127.0.0.1:8088`); none unless set.
    #[arg(long, env = "REBUILD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    #[command(flatten)]
    pub projections: ProjectionArgs,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of `/health`, `/ready` and `/metrics`; loopback unless told otherwise (`0.0.0.0:8086`
    /// in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8086")]
    pub listen_addr: String,

    #[command(flatten)]
    pub projections: ProjectionArgs,
}

/// What running projections takes, for `run` and `rebuild` alike: the log they read, the
/// database they write and how they batch.
#[derive(Debug, Clone, Args)]
pub struct ProjectionArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub batching: BatchArgs,
}

impl ProjectionArgs {
    /// What a projection runner needs to read the events topic in these batches.
    pub fn runner_settings(&self) -> RunnerSettings {
        self.batching.runner_settings(&self.kafka)
    }
}

/// How projections batch events.
#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Most events folded into one PostgreSQL transaction.
    #[arg(long, env = "PROJECTOR_BATCH_SIZE", default_value_t = 5000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,

    /// How long a projection waits to fill a batch after its first event (`20ms`, `1s`).
    #[arg(long, env = "PROJECTOR_BATCH_LINGER", default_value = "20ms", value_parser = duration::parse)]
    pub batch_linger: Duration,

    /// Deprecated: PROJECTOR_BATCH_LINGER in milliseconds.
    #[arg(long, env = "PROJECTOR_BATCH_LINGER_MS", conflicts_with = "batch_linger")]
    pub batch_linger_ms: Option<u64>,
}

impl BatchArgs {
    /// What a projection runner needs to read `kafka`'s events topic in these batches.
    pub fn runner_settings(&self, kafka: &KafkaArgs) -> RunnerSettings {
        RunnerSettings {
            kafka: kafka.clone(),
            topics: Topics::new(&kafka.topic_prefix),
            batch_size: self.batch_size,
            batch_linger: duration::or_deprecated_ms(self.batch_linger, self.batch_linger_ms),
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
            ("--batch-size", "0"),
            ("--database-max-connections", "0"),
            ("--kafka-brokers", ""),
        ]);
    }
}
