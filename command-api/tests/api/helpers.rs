use std::time::Duration;

use command_api::{Application, Config};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;
use service_kit::server::App;
pub(crate) use service_kit::testing::metric;
use service_kit::testing::{bearer_all, wait_until, Isolation};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const READY_WITHIN: Duration = Duration::from_secs(60);

/// A command-api running in this test process, on its own port, topics and consumer groups.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) isolation: Isolation,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The settings a test's command-api runs with: the service's defaults in `isolation`, on a
/// port of its own, and a verdict deadline with room for a broker that tests running at once share.
pub(crate) fn config(isolation: &Isolation) -> Config {
    isolation.settings(&[("LISTEN_ADDR", "127.0.0.1:0"), ("OUTCOME_TIMEOUT", "15s")])
}

/// Starts a command-api and waits until it is ready.
pub(crate) async fn spawn_app() -> TestApp {
    let isolation = Isolation::new();
    let app = spawn_app_with(isolation.clone(), config(&isolation)).await;
    app.wait_ready().await;
    app
}

/// Starts a command-api with `config` inside `isolation`, without waiting for readiness.
pub(crate) async fn spawn_app_with(isolation: Isolation, config: Config) -> TestApp {
    let app = Application::build(config).await.expect("command-api builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        isolation,
        client: authorized_client(),
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub(crate) async fn wait_ready(&self) {
        let url = format!("{}/ready", self.address);
        wait_until("command-api to be ready", READY_WITHIN, || async {
            let response = self.client.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    /// `POST /api/v1/orders` with a JSON body and an optional idempotency key.
    pub(crate) async fn place(&self, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
        self.post("/api/v1/orders", body, idempotency_key).await
    }

    /// `POST` of a JSON body to `path`, with an optional idempotency key.
    pub(crate) async fn post(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.address)).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("command-api answers")
    }

    /// Stops the app the way SIGTERM would, and waits for it to drain.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("command-api task").expect("command-api ran");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A client sending a token with every scope on each request.
pub(crate) fn authorized_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        bearer_all().parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Every committed record of `topic`, read from the beginning with `read_committed`.
pub(crate) async fn committed_records(isolation: &Isolation, topic: &str) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &isolation.kafka.kafka_brokers)
        .set("group.id", format!("{}inspector", isolation.kafka.topic_prefix))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("inspector consumer");
    let partitions = service_kit::kafka::topics::partition_count(consumer.client(), topic).expect("topic exists");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let mut at_end = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions {
        match tokio::time::timeout_at(deadline, service_kit::kafka::recv(&consumer))
            .await
            .expect("records within 30 s")
        {
            Ok(message) => records.push(message.detach()),
            Err(KafkaError::PartitionEOF(partition)) => {
                at_end.insert(partition);
            }
            Err(err) => panic!("reading {topic}: {err}"),
        }
    }
    records
}

/// Waits until the events topic holds an event of `event_type` for `purchase_id`; returns all
/// events of that purchase.
pub(crate) async fn purchase_events(isolation: &Isolation, purchase_id: &str, event_type: &str) -> Vec<OwnedMessage> {
    wait_until(
        &format!("{event_type} for {purchase_id}"),
        Duration::from_secs(30),
        || async {
            let events: Vec<OwnedMessage> = committed_records(isolation, &isolation.topics.events)
                .await
                .into_iter()
                .filter(|e| header(e, "ce_subject") == Some(purchase_id))
                .collect();
            events
                .iter()
                .any(|e| header(e, "ce_type") == Some(event_type))
                .then_some(events)
        },
    )
    .await
}

/// The id of the purchase `response` accepted, asserting it was.
pub(crate) async fn accepted_purchase(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["purchase_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The value of header `name` of `record`.
pub(crate) fn header<'a>(record: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    record
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Asserts a problem+json answer with `status`, naming `field` when given; returns the body.
pub(crate) async fn assert_problem(response: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().is_some_and(|t| t.starts_with("/problems/")),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    body
}

/// A record written by hand, as a broken or foreign producer would: any key, headers and payload.
pub(crate) struct RawRecord<'a> {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a str>,
    pub(crate) headers: Vec<(&'a str, String)>,
    pub(crate) payload: Vec<u8>,
}

/// Writes `records` to `topic` with a plain producer (murmur2 on the key, as our producers).
pub(crate) async fn produce_raw(isolation: &Isolation, topic: &str, records: Vec<RawRecord<'_>>) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &isolation.kafka.kafka_brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("raw producer");
    for record in &records {
        let mut message = FutureRecord::<str, [u8]>::to(topic).payload(&record.payload);
        if let Some(key) = record.key {
            message = message.key(key);
        }
        if let Some(partition) = record.partition {
            message = message.partition(partition);
        }
        if !record.headers.is_empty() {
            let headers = record
                .headers
                .iter()
                .fold(OwnedHeaders::new(), |headers, (key, value)| {
                    headers.insert(Header {
                        key,
                        value: Some(value.as_str()),
                    })
                });
            message = message.headers(headers);
        }
        producer
            .send(message, Duration::from_secs(10))
            .await
            .expect("raw record written");
    }
}

/// The headers of `record` as owned pairs, to copy a real record with some of them changed.
pub(crate) fn headers_of(record: &OwnedMessage) -> Vec<(&'static str, String)> {
    const NAMES: [&str; 11] = [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
        "ce_correlationid",
        "ce_sequence",
        "ce_causationid",
        "traceparent",
    ];
    NAMES
        .into_iter()
        .filter_map(|name| header(record, name).map(|value| (name, value.to_owned())))
        .collect()
}

/// Replaces (or with `None` drops) header `name` in `headers`.
pub(crate) fn with_header(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    headers.retain(|(key, _)| *key != name);
    if let Some(value) = value {
        headers.push((name, value.to_owned()));
    }
    headers
}
