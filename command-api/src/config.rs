//! command-api settings: environment first, flags second; `--help` lists them all.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Args;
use service_kit::auth::AuthArgs;
use service_kit::duration;
use service_kit::edge::EdgeArgs;
use service_kit::kafka::KafkaArgs;
use service_kit::secret::{self, ExposeSecret, SecretError, SecretSource, SecretString};
use thiserror::Error;

/// The fewest bytes a card fingerprint key may have. Card numbers are few enough to try them
/// all, so a fingerprint keeps its number only as well as its key is unguessable.
pub const MIN_FINGERPRINT_KEY_BYTES: usize = 32;

/// Why the card fingerprint key cannot be used; reported at start-up.
#[derive(Debug, Error)]
pub enum FingerprintKeyError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("the card fingerprint key is shorter than {MIN_FINGERPRINT_KEY_BYTES} bytes: a short key could be guessed, and every fingerprint turned back into its card number")]
    TooShort,
}

/// What `command-api serve` runs with.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP API listens on; loopback unless told otherwise (`0.0.0.0:8084` in a container).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8084")]
    pub listen_addr: String,

    #[command(flatten)]
    pub edge: EdgeArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// Stable identity of this instance's decider; its transactional id, consumer client id and
    /// store file derive from it, so a restarted instance fences its own zombie at once. Unset:
    /// `<POD_NAME or host name>-<HTTP port>`, unique per replica. A start is refused while a live
    /// replica has the same id.
    #[arg(long, env = "DECIDER_INSTANCE_ID")]
    pub decider_instance_id: Option<String>,

    /// The pod's name (from the Kubernetes downward API): the decider's instance id derives from
    /// it when set, else from the host name.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// Directory of the decider's local state store (relative to the working directory unless
    /// absolute). Keep it on a volume that survives restarts: a restart then reads only the
    /// changelog written since; an empty one restores from the changelog.
    #[arg(long, env = "DECIDER_STATE_DIR", default_value = "decider-state")]
    pub decider_state_dir: PathBuf,

    /// Rebuild the decider's state from the events log on every assignment (and write the
    /// changelog anew) instead of restoring from the changelog: after the log was repaired, or
    /// written by a producer other than the decider.
    #[arg(long, env = "DECIDER_REBUILD_STATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub decider_rebuild_state: bool,

    /// The outcomes partition this edge reads its verdicts from; unset, it derives from
    /// DECIDER_INSTANCE_ID (an integer `n` reads partition `n`, modulo the partition count).
    /// Give each replica its own, so no edge reads another's verdicts.
    #[arg(long, env = "REPLY_PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
    pub reply_partition: Option<i32>,

    /// Most commands decided in one Kafka transaction.
    #[arg(long, env = "DECIDER_BATCH_SIZE", default_value_t = 1000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub decider_batch_size: usize,

    /// How long the decider waits to fill a batch after its first command (`0ms`, `5ms`). At the
    /// default it takes only what has already arrived: under load, commands pile up while a
    /// transaction commits, so batches fill without waiting, and a lone command is not held back.
    #[arg(long, env = "DECIDER_BATCH_LINGER", default_value = "0ms", value_parser = duration::parse)]
    pub decider_batch_linger: Duration,

    /// Deprecated: DECIDER_BATCH_LINGER in milliseconds.
    #[arg(long, env = "DECIDER_BATCH_LINGER_MS", conflicts_with = "decider_batch_linger")]
    pub decider_batch_linger_ms: Option<u64>,

    /// How long the edge waits for Kafka to take a command before answering 503.
    #[arg(long, env = "PRODUCE_TIMEOUT", default_value = "5s", value_parser = duration::positive)]
    pub produce_timeout: Duration,

    /// Deprecated: PRODUCE_TIMEOUT in milliseconds.
    #[arg(long, env = "PRODUCE_TIMEOUT_MS", conflicts_with = "produce_timeout", value_parser = clap::value_parser!(u64).range(1..))]
    pub produce_timeout_ms: Option<u64>,

    /// How long the edge waits for a verdict before answering 503.
    #[arg(long, env = "OUTCOME_TIMEOUT", default_value = "10s", value_parser = duration::positive)]
    pub outcome_timeout: Duration,

    /// Deprecated: OUTCOME_TIMEOUT in milliseconds.
    #[arg(long, env = "OUTCOME_TIMEOUT_MS", conflicts_with = "outcome_timeout", value_parser = clap::value_parser!(u64).range(1..))]
    pub outcome_timeout_ms: Option<u64>,

    /// Key of the card fingerprints (HMAC-SHA256 of the card number), at least 32 bytes. Keep it
    /// secret and stable: a new key gives every card a new fingerprint. This or the file is
    /// required.
    #[arg(long, env = "CARD_FINGERPRINT_KEY", hide_env_values = true, value_parser = secret::parse)]
    pub card_fingerprint_key: Option<SecretString>,

    /// File holding the card fingerprint key instead (one trailing line break is ignored).
    #[arg(long, env = "CARD_FINGERPRINT_KEY_FILE")]
    pub card_fingerprint_key_file: Option<PathBuf>,

    /// Payment gateway; `sandbox` is embedded and behaves like the well-known test cards.
    #[arg(long, env = "PAYMENT_GATEWAY", value_enum, default_value_t = GatewayKind::Sandbox)]
    pub payment_gateway: GatewayKind,

    /// Run the reactor in this process: it charges requested purchases and pays refunds back,
    /// and drives the stock reservation saga between orders and products.
    #[arg(long, env = "PAYMENT_REACTOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub payment_reactor: bool,
}

/// The payment gateways orderstream can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GatewayKind {
    Sandbox,
}

impl Config {
    /// The card fingerprint key, inline or from its file.
    pub fn card_fingerprint_key(&self) -> Result<SecretString, FingerprintKeyError> {
        let key = SecretSource {
            variable: "CARD_FINGERPRINT_KEY",
            value: self.card_fingerprint_key.as_ref(),
            file_variable: "CARD_FINGERPRINT_KEY_FILE",
            file: self.card_fingerprint_key_file.as_deref(),
        }
        .require()?;
        if key.expose_secret().len() < MIN_FINGERPRINT_KEY_BYTES {
            return Err(FingerprintKeyError::TooShort);
        }
        Ok(key)
    }

    pub fn produce_timeout(&self) -> Duration {
        duration::or_deprecated_ms(self.produce_timeout, self.produce_timeout_ms)
    }

    pub fn outcome_timeout(&self) -> Duration {
        duration::or_deprecated_ms(self.outcome_timeout, self.outcome_timeout_ms)
    }

    /// The decider's instance id for a replica listening on `port`.
    pub fn decider_instance_id(&self, port: u16) -> String {
        self.decider_instance_id.clone().unwrap_or_else(|| {
            let host = self
                .pod_name
                .clone()
                .unwrap_or_else(crate::decider::instance::host_name);
            crate::decider::instance::instance_id(&host, port)
        })
    }

    pub fn batch_linger(&self) -> Duration {
        duration::or_deprecated_ms(self.decider_batch_linger, self.decider_batch_linger_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use service_kit::testing::{assert_settings_refused, TEST_FINGERPRINT_KEY};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn a_card_fingerprint_key_shorter_than_32_bytes_is_refused() {
        let key = |key: &str| {
            let cli = Cli::try_parse_from(["command-api", &format!("--card-fingerprint-key={key}")]).expect("parses");
            cli.config.card_fingerprint_key()
        };
        assert!(key(TEST_FINGERPRINT_KEY).is_ok());
        assert!(matches!(key(&"k".repeat(31)), Err(FingerprintKeyError::TooShort)));
        let error = key("hunter2").unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn settings_that_could_never_work_are_refused_as_they_are_read() {
        assert_settings_refused::<Config>(&[
            ("--decider-batch-size", "0"),
            ("--reply-partition", "-1"),
            ("--produce-timeout", "0s"),
            ("--produce-timeout-ms", "0"),
            ("--outcome-timeout", "0ms"),
            ("--outcome-timeout-ms", "0"),
            ("--kafka-brokers", ""),
            ("--request-timeout", "0s"),
        ]);
    }
}
