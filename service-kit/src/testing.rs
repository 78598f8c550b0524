//! What the integration tests share: every test gets its own topic prefix and database schema
//! on the real Kafka broker and PostgreSQL, configures a service in it as its process would be,
//! writes events as the command side does, waits on conditions with deadlines, and can run a
//! service as a child process to kill it for real.

use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use domain::order::{Channel, Event, OrderName, OrderPlaced};
use domain::Message;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::auth::{mint_hs256, AuthArgs, ALL_SCOPES, STAFF_SCOPES, USER_SCOPES};
use crate::database::{is_lock_timeout, DatabaseArgs};
use crate::kafka::{Envelope, KafkaArgs, Topics};
use crate::secret::ExposeSecret;

pub use crate::refused::assert_settings_refused;

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

/// One test's private corner of the shared broker and database. When its last copy goes, so do
/// its topics, its schema and its deciders' state, unless the test failed: what a failed test
/// left is kept to be looked at.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Unique per test, used as topic prefix (`t<id>.`) and schema name (`t<id>`).
    pub id: String,
    pub kafka: KafkaArgs,
    pub database: DatabaseArgs,
    pub topics: Topics,
    _leftovers: Arc<Leftovers>,
}

/// What a test made outside its process, removed when dropped. Without this every run of the
/// suite left some hundreds of schemas, topics and state directories behind, until the broker
/// ran out of file handles and the disk out of space.
#[derive(Debug)]
struct Leftovers {
    id: String,
    kafka: KafkaArgs,
    database: DatabaseArgs,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let _ = std::fs::remove_dir_all(decider_state_dir(&self.id));
        let (kafka, database) = (self.kafka.clone(), self.database.clone());
        // Its own thread and runtime: the test's runtime may be the one this drop blocks.
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(remove(&kafka, &database))
        })
        .join();
        if let Ok(Err(error)) = removed {
            eprintln!("could not remove the schema or topics of test {}: {error}", self.id);
        }
    }
}

/// Deletes the topics named with `kafka`'s prefix, then drops `database`'s schema and the
/// schemas named after it; the one failing does not keep the other from its work.
async fn remove(kafka: &KafkaArgs, database: &DatabaseArgs) -> Result<(), BoxError> {
    let topics = delete_topics(kafka).await;
    let schemas = drop_schemas(database).await;
    topics.and(schemas)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn delete_topics(kafka: &KafkaArgs) -> Result<(), BoxError> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(10))?;
    let topics: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name())
        .filter(|name| name.starts_with(kafka.topic_prefix.as_str()))
        .collect();
    if !topics.is_empty() {
        admin.delete_topics(&topics, &AdminOptions::new()).await?;
    }
    Ok(())
}

/// Sessions of other connections holding a lock on a table of schema `$1`, ended.
const END_LOCK_HOLDERS: &str = "SELECT count(pg_terminate_backend(holder.pid)) FROM (
    SELECT DISTINCT l.pid FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()
) holder";

/// How often a schema's lock holders are ended before its drop gives up.
const DROP_ATTEMPTS: u32 = 4;

/// Drops the schema and those named after it (`<schema>_reference`, a rebuild's
/// `<schema>_rebuild`). A service of the test may still hold their tables, frozen mid-transaction
/// on the very runtime this drop blocks: its sessions are ended first, and again while a pooled
/// connection takes their place.
async fn drop_schemas(database: &DatabaseArgs) -> Result<(), BoxError> {
    let mut conn = PgConnection::connect(database.url()?.expose_secret()).await?;
    sqlx::query("SET lock_timeout = '2s'").execute(&mut conn).await?;
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR starts_with(nspname, $1 || '_')",
    )
    .bind(&database.database_schema)
    .fetch_all(&mut conn)
    .await?;
    for schema in schemas {
        for attempt in 1..=DROP_ATTEMPTS {
            sqlx::query(END_LOCK_HOLDERS).bind(&schema).execute(&mut conn).await?;
            match sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(error) if attempt < DROP_ATTEMPTS && is_lock_timeout(&error) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(())
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
            outcome_partitions: TEST_PARTITIONS,
            replication_factor: 1,
            min_insync_replicas: 1,
        };
        let database = DatabaseArgs {
            database_max_connections: 4,
            ..DatabaseArgs::new(
                std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://orderstream:orderstream@127.0.0.1:5432/orderstream".to_owned()),
                id.clone(),
            )
        };
        let leftovers = Leftovers {
            id: id.clone(),
            kafka: kafka.clone(),
            database: database.clone(),
        };
        Self {
            topics: Topics::new(&prefix),
            id,
            kafka,
            database,
            _leftovers: Arc::new(leftovers),
        }
    }

    /// The environment a service process needs to join this isolation.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KAFKA_BROKERS", self.kafka.kafka_brokers.clone()),
            ("TOPIC_PREFIX", self.kafka.topic_prefix.clone()),
            ("KAFKA_PARTITIONS", self.kafka.partitions.to_string()),
            ("OUTCOME_PARTITIONS", self.kafka.outcome_partitions.to_string()),
            (
                "DATABASE_URL",
                self.database.url().expect("test URL").expose_secret().to_owned(),
            ),
            ("DATABASE_SCHEMA", self.database.database_schema.clone()),
            ("JWT_SECRET", TEST_JWT_SECRET.to_owned()),
            ("CARD_FINGERPRINT_KEY", TEST_FINGERPRINT_KEY.to_owned()),
            ("DECIDER_STATE_DIR", self.decider_state_dir().display().to_string()),
        ]
    }

    /// Where this test's deciders keep their local state stores (under the system's temporary
    /// directory, never in the source tree).
    pub fn decider_state_dir(&self) -> PathBuf {
        decider_state_dir(&self.id)
    }

    /// A file of this test's under the system's temporary directory, such as a child process's
    /// log: `<id>-<name>`.
    pub fn temp_file(&self, name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{name}", self.id))
    }

    /// The settings `C` of a service run in this isolation, read as its process would read them
    /// from [`Isolation::env`] with `extra` on top; every other knob keeps its documented
    /// default. This process's own environment is ignored, so nothing set in the shell that
    /// runs the tests leaks into them.
    pub fn settings<C: clap::Args + clap::FromArgMatches>(&self, extra: &[(&str, &str)]) -> C {
        let mut env: HashMap<&str, String> = self.env().into_iter().collect();
        env.extend(extra.iter().map(|&(name, value)| (name, value.to_owned())));
        let mut flags = vec!["settings".to_owned()];
        let command = C::augment_args(clap::Command::new("settings")).mut_args(|arg| {
            let value = arg.get_env().and_then(|name| env.get(name.to_str()?));
            if let (Some(value), Some(long)) = (value, arg.get_long()) {
                flags.push(format!("--{long}={value}"));
            }
            arg.env(None::<&'static str>)
        });
        let matches = command.try_get_matches_from(flags).expect("test settings parse");
        C::from_arg_matches(&matches).expect("test settings")
    }

    /// Sum of the high watermarks of `topic`: grows with every record written, committed or not.
    pub fn records_written(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.kafka_brokers)
            .create()
            .expect("watermark consumer");
        match crate::kafka::watch::log_ends(&consumer, topic) {
            Ok(ends) => ends.values().sum(),
            Err(crate::kafka::Error::TopicMissing { .. }) => 0,
            Err(error) => panic!("watermarks of {topic}: {error}"),
        }
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Self::new()
    }
}

fn decider_state_dir(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("orderstream-{id}-decider-state"))
}

/// The value of the unlabelled counter `name` on `{base}/metrics`.
pub async fn metric(client: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
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

/// An `OrderPlaced` named `name` at `placed_at` for a fresh order, as the API records it when
/// given only a name.
pub fn order_placed(name: &str, placed_at: DateTime<Utc>) -> OrderPlaced {
    OrderPlaced {
        order_id: Uuid::new_v4(),
        name: OrderName::parse(name).expect("a valid test order name"),
        note: None,
        placed_at,
        details: None,
        channel: Channel::Api,
        user_id: None,
        catalog_items: None,
    }
}

/// `placed` in the envelope the decider writes it in: the first event of its order.
pub fn placed_envelope(placed: OrderPlaced) -> Envelope<Event> {
    Envelope {
        id: Uuid::new_v4(),
        time: placed.placed_at,
        sequence: Some(1),
        causation_id: Some(Uuid::new_v4()),
        correlation_id: placed.order_id,
        trace: Default::default(),
        message: Event::OrderPlaced(placed),
    }
}

/// The headers of `envelope` with `ce_type` set to `message_type` and those named in `without`
/// left out: what a producer of another version, or a broken one, writes.
pub fn headers_as<M: Message>(envelope: &Envelope<M>, message_type: &str, without: &[&str]) -> OwnedHeaders {
    let headers = envelope.headers();
    headers.iter().filter(|header| !without.contains(&header.key)).fold(
        OwnedHeaders::new_with_capacity(11),
        |kept, header| {
            let value = if header.key == "ce_type" {
                Some(message_type.as_bytes())
            } else {
                header.value
            };
            kept.insert(Header { key: header.key, value })
        },
    )
}

/// Writes `envelopes` to `topic` as the decider does (keyed by aggregate, CloudEvents headers),
/// as fast as `producer` takes them, and returns once every one is acknowledged.
pub async fn produce<M: Message>(
    producer: &FutureProducer,
    topic: &str,
    envelopes: impl IntoIterator<Item = Envelope<M>>,
) {
    let mut deliveries = Vec::new();
    for envelope in envelopes {
        let (key, payload) = (envelope.key(), envelope.payload());
        let mut record = FutureRecord::to(topic)
            .key(&key)
            .payload(&payload)
            .headers(envelope.headers());
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => panic!("produce to {topic} failed: {err}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flushed");
    for delivery in deliveries {
        delivery.await.expect("delivery").expect("delivered");
    }
}

/// The card number of [`example_purchase`].
pub const EXAMPLE_CARD_NUMBER: &str = "4242424242424242";
/// The CVC of [`example_purchase`].
pub const EXAMPLE_CARD_CVC: &str = "9731";

/// The purchase processor's own example request for `user_id`, as clients send it today; the
/// sandbox authorizes its card.
pub fn example_purchase(user_id: Uuid) -> Value {
    json!({
        "user_id": user_id,
        "username": "first_user",
        "amount": 100.50,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_holder_name": "John Doe",
        "card_number": EXAMPLE_CARD_NUMBER,
        "card_expiry": "12/30",
        "card_cvc": EXAMPLE_CARD_CVC,
        "billing_address": "123 Elm Street, Springfield",
        "transaction_date": DateTime::<Utc>::from(SystemTime::now()).to_rfc3339(),
    })
}

/// Asserts that `text`, found `where_found`, holds neither the card number of
/// [`example_purchase`] (plain or spaced), nor its CVC as a value, nor a field named for a CVC.
pub fn assert_no_card_data(text: &str, where_found: &str) {
    let spaced = "4242 4242 4242 4242";
    // The CVC as a value, quoted: four digits alone could occur inside any hex id.
    let quoted_cvc = format!("\"{EXAMPLE_CARD_CVC}\"");
    for secret in [EXAMPLE_CARD_NUMBER, spaced, &quoted_cvc, "cvc"] {
        assert!(!text.contains(secret), "{secret} found {where_found}: {text}");
    }
}

/// What `what`, a process run to its end, printed on stdout; it must have succeeded, or the
/// test fails with everything it printed.
pub fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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

    /// The process id, for reading what the process costs from `/proc`.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process without warning, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop, as an orchestrator does: SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    /// What a process that must refuse to start logged to `log` (removed after), once it exited
    /// unsuccessfully within 30 s.
    pub async fn refused_start(mut self, log: &Path) -> String {
        let status = self.exited_within(Duration::from_secs(30)).await;
        assert!(
            !status.success(),
            "the service was to refuse to start, and exited with {status}"
        );
        let text = std::fs::read_to_string(log).expect("the service's log");
        let _ = std::fs::remove_file(log);
        text
    }

    /// How the process exited, waiting for it up to `deadline`.
    pub async fn exited_within(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        wait_until("the service to exit", deadline, || {
            let exited = child.try_wait().expect("child status");
            async move { exited }
        })
        .await
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
        let _logs = crate::telemetry::init("test");
    }
}
