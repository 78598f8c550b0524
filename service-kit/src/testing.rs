//! What the integration tests share: every test gets its own topic prefix and database schema
//! on the real Kafka broker and PostgreSQL, waits on conditions with deadlines, and can run a
//! service as a child process to kill it for real.

use std::future::Future;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use uuid::Uuid;

use crate::auth::{mint_hs256, AuthArgs, ALL_SCOPES, STAFF_SCOPES, USER_SCOPES};
use crate::database::DatabaseArgs;
use crate::kafka::{KafkaArgs, Topics};
use crate::secret::ExposeSecret;

/// The HS256 secret every test stack verifies tokens with.
pub const TEST_JWT_SECRET: &str = "orderstream-test-secret-not-for-production-use";
/// The card fingerprint key of every test stack.
pub const TEST_FINGERPRINT_KEY: &str = "orderstream-test-fingerprint-key";

/// Authentication settings of a test stack.
pub fn test_auth() -> AuthArgs {
    AuthArgs {
        jwt_secret: Some(TEST_JWT_SECRET.into()),
        jwt_secret_file: None,
        jwt_public_key_file: None,
        jwt_issuer: None,
        jwt_audience: None,
    }
}

/// An `Authorization` header value carrying `scopes`, valid for an hour.
pub fn bearer(scopes: &[&str]) -> String {
    bearer_as("test-client", scopes)
}

/// A user's `Authorization` header value: the user scopes, with the user id as subject.
pub fn bearer_user(user_id: Uuid) -> String {
    bearer_as(&user_id.to_string(), &USER_SCOPES)
}

/// A staff member's `Authorization` header value: the staff scopes.
pub fn bearer_staff() -> String {
    bearer_as("test-staff", &STAFF_SCOPES)
}

/// An `Authorization` header value for `subject` carrying `scopes`, valid for an hour.
pub fn bearer_as(subject: &str, scopes: &[&str]) -> String {
    let token =
        mint_hs256(TEST_JWT_SECRET, subject, scopes, Duration::from_secs(3600), None, None).expect("test token");
    format!("Bearer {token}")
}

/// An `Authorization` header value carrying every scope, a user's and staff's.
pub fn bearer_all() -> String {
    bearer(&ALL_SCOPES)
}

/// Partitions of a test's commands and events topics: several, so partitioning is exercised,
/// few, so topic creation stays quick.
pub const TEST_PARTITIONS: i32 = 3;

/// One test's private corner of the shared broker and database.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Unique per test, used as topic prefix (`t<id>.`) and schema name (`t<id>`).
    pub id: String,
    pub kafka: KafkaArgs,
    pub database: DatabaseArgs,
    pub topics: Topics,
}

impl Isolation {
    /// Reads `KAFKA_BROKERS` and `DATABASE_URL` (defaults: the local stack) and picks fresh names.
    pub fn new() -> Self {
        init_test_logging();
        let id = format!("t{}", Uuid::new_v4().simple());
        let prefix = format!("{id}.");
        let kafka = KafkaArgs {
            kafka_brokers: std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned()),
            topic_prefix: prefix.clone(),
            partitions: TEST_PARTITIONS,
        };
        let database = DatabaseArgs {
            database_max_connections: 4,
            ..DatabaseArgs::new(
                std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://orderstream:orderstream@127.0.0.1:5432/orderstream".to_owned()),
                id.clone(),
            )
        };
        Self {
            topics: Topics::new(&prefix),
            id,
            kafka,
            database,
        }
    }

    /// The environment a service process needs to join this isolation.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KAFKA_BROKERS", self.kafka.kafka_brokers.clone()),
            ("TOPIC_PREFIX", self.kafka.topic_prefix.clone()),
            ("KAFKA_PARTITIONS", self.kafka.partitions.to_string()),
            (
                "DATABASE_URL",
                self.database.url().expect("test URL").expose_secret().to_owned(),
            ),
            ("DATABASE_SCHEMA", self.database.database_schema.clone()),
            ("JWT_SECRET", TEST_JWT_SECRET.to_owned()),
            ("CARD_FINGERPRINT_KEY", TEST_FINGERPRINT_KEY.to_owned()),
        ]
    }

    /// Sum of the high watermarks of `topic`: grows with every record written, committed or not.
    pub fn records_written(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.kafka_brokers)
            .create()
            .expect("watermark consumer");
        let Ok(partitions) = crate::kafka::topics::partition_count(consumer.client(), topic) else {
            return 0;
        };
        (0..partitions as i32)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1
            })
            .sum()
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `probe` every 20 ms until it yields a value, panicking with `what` after `deadline`.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port nothing listens on right now, for a child process to bind.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A service running as a child process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildService {
    child: Child,
}

impl ChildService {
    /// Starts `binary args...` with `env`; its output is shown only when `TEST_LOG` is set.
    pub fn spawn(binary: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let quiet = std::env::var_os("TEST_LOG").is_none();
        let mut command = Command::new(binary);
        command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        if quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Self {
            child: command.spawn().expect("service binary starts"),
        }
    }

    /// Starts `binary args...` with `env`, writing everything it logs to `log`.
    pub fn spawn_logged(binary: &Path, args: &[&str], env: &[(&str, String)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let mut command = Command::new(binary);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        Self {
            child: command.spawn().expect("service binary starts"),
        }
    }

    /// Kills the process without warning, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs for tests go to the test's output only when `TEST_LOG` is set.
fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        crate::telemetry::init();
    }
}
