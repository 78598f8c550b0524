use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::card::{CardExpiry, CardNumber, MaskedCard};
use domain::money::{Currency, Money};
use domain::{order, purchase, Event};
use notifier::signature::WebhookSecret;
use notifier::{Application, Config};
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use service_kit::kafka::Envelope;
use service_kit::server::App;
use service_kit::testing::{
    bearer_user, free_port, order_placed, produce, wait_until, ChildService, Isolation, EXAMPLE_CARD_NUMBER,
};
use tokio::net::TcpListener;
use uuid::Uuid;

/// How long a test waits for a condition before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Settings of every test notifier: receivers on this machine allowed, quick retries, quick
/// polls, few connections per replica.
const TEST_SETTINGS: [(&str, &str); 8] = [
    ("LISTEN_ADDR", "127.0.0.1:0"),
    ("WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("WEBHOOK_RETRY_BASE", "100ms"),
    ("WEBHOOK_RETRY_CAP", "400ms"),
    ("WEBHOOK_POLL_INTERVAL", "50ms"),
    ("WEBHOOK_TIMEOUT", "2s"),
    ("FANOUT_BATCH_LINGER", "5ms"),
    ("DATABASE_MAX_CONNECTIONS", "3"),
];

/// A notifier (one or more replicas) in a test's own topics and schema.
pub(crate) struct TestApp {
    pub(crate) isolation: Isolation,
    /// The first replica's API.
    pub(crate) address: String,
    client: reqwest::Client,
    producer: FutureProducer,
}

impl TestApp {
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A notifier with `extra` settings over the test ones.
    pub(crate) async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let isolation = Isolation::new();
        isolation.topics.ensure(&isolation.kafka).await.expect("topics");
        let port = start_replica(&isolation, extra).await;
        Self::serving(isolation, port)
    }

    /// A notifier that runs only as a process of its own, so that its environment is its own,
    /// with `extra` settings over the test ones; killed (SIGKILL) when the service returned drops.
    pub(crate) async fn spawn_process(extra: &[(&str, String)]) -> (Self, ChildService) {
        let isolation = Isolation::new();
        isolation.topics.ensure(&isolation.kafka).await.expect("topics");
        let port = free_port();
        let mut settings = extra.to_vec();
        settings.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
        let notifier = replica_process(&isolation, &settings);
        let app = Self::serving(isolation, port);
        wait_until("the notifier to answer", DEADLINE, || async {
            let health = app.client.get(format!("{}/health", app.address)).send().await.ok()?;
            health.status().is_success().then_some(())
        })
        .await;
        (app, notifier)
    }

    fn serving(isolation: Isolation, port: u16) -> Self {
        Self {
            address: format!("http://127.0.0.1:{port}"),
            producer: isolation.kafka.producer_config().create().expect("producer"),
            client: reqwest::Client::new(),
            isolation,
        }
    }

    /// Starts one more replica on the same topics and schema.
    pub(crate) async fn add_replica(&self) {
        start_replica(&self.isolation, &[]).await;
    }

    /// Starts one more replica as a process of its own (so a test can SIGKILL it), with `extra`
    /// settings over the test ones.
    pub(crate) fn add_replica_process(&self, extra: &[(&str, String)]) -> ChildService {
        replica_process(&self.isolation, extra)
    }

    /// `POST /api/v1/webhooks` as `user`: the status and the body.
    pub(crate) async fn register(&self, user: Uuid, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/api/v1/webhooks", self.address))
            .header("authorization", bearer_user(user))
            .json(body)
            .send()
            .await
            .expect("answered");
        answer(response).await
    }

    /// Registers a webhook of `user` to `url` for `events`; its id and secret.
    pub(crate) async fn webhook(&self, user: Uuid, url: &str, events: &[&str]) -> (Uuid, WebhookSecret) {
        let (status, body) = self
            .register(user, &serde_json::json!({"url": url, "events": events}))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["webhook_id"].as_str().expect("an id").parse().expect("a UUID");
        let secret = WebhookSecret::parse(body["secret"].as_str().expect("a secret")).expect("a whsec_ secret");
        (id, secret)
    }

    /// `GET` or `DELETE` of `path` as `user`.
    pub(crate) async fn call(&self, method: reqwest::Method, user: Uuid, path: &str) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("authorization", bearer_user(user))
            .send()
            .await
            .expect("answered");
        answer(response).await
    }

    /// The deliveries of `webhook_id` as its owner `user` reads them.
    pub(crate) async fn deliveries(&self, user: Uuid, webhook_id: Uuid) -> Vec<Value> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                user,
                &format!("/api/v1/webhooks/{webhook_id}/deliveries?limit=500"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().expect("a list").clone()
    }

    /// Waits until `webhook_id` has `count` deliveries, every one of them satisfying `done`.
    pub(crate) async fn wait_for_deliveries(
        &self,
        user: Uuid,
        webhook_id: Uuid,
        count: usize,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        wait_until(what, DEADLINE, || async {
            let deliveries = self.deliveries(user, webhook_id).await;
            (deliveries.len() == count && deliveries.iter().all(&done)).then_some(deliveries)
        })
        .await
    }

    /// Writes `events` to the events topic as the decider does.
    pub(crate) async fn publish(&self, events: impl IntoIterator<Item = Event>) {
        produce(
            &self.producer,
            &self.isolation.topics.events,
            events.into_iter().map(envelope),
        )
        .await;
    }

    /// Writes one record as any producer could: `headers` as given, `payload` as given.
    pub(crate) async fn publish_raw(&self, headers: &[(&str, &str)], payload: &[u8]) {
        use rdkafka::message::{Header, OwnedHeaders};
        use rdkafka::producer::FutureRecord;
        let headers = headers.iter().fold(OwnedHeaders::new(), |all, (key, value)| {
            all.insert(Header {
                key,
                value: Some(*value),
            })
        });
        self.producer
            .send(
                FutureRecord::to(&self.isolation.topics.events)
                    .key("stranger")
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("written");
    }

    /// The notifier's `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("text")
    }
}

/// A replica as a process of its own, with `extra` settings over the test ones.
fn replica_process(isolation: &Isolation, extra: &[(&str, String)]) -> ChildService {
    let mut env = isolation.env();
    env.extend(TEST_SETTINGS.iter().map(|(key, value)| (*key, (*value).to_owned())));
    env.extend(extra.iter().cloned());
    ChildService::spawn(std::path::Path::new(env!("CARGO_BIN_EXE_notifier")), &[], &env)
}

async fn start_replica(isolation: &Isolation, extra: &[(&str, &str)]) -> u16 {
    let mut settings: HashMap<&str, &str> = TEST_SETTINGS.into_iter().collect();
    settings.extend(extra.iter().copied());
    let settings: Vec<(&str, &str)> = settings.into_iter().collect();
    let config: Config = isolation.settings(&settings);
    let app = Application::build(config).await.expect("notifier builds");
    let port = app.port();
    tokio::spawn(app.run_until(std::future::pending()));
    port
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// `event` in the envelope the decider writes.
pub(crate) fn envelope(event: Event) -> Envelope<Event> {
    Envelope {
        id: Uuid::new_v4(),
        time: event.occurred_at(),
        sequence: Some(1),
        causation_id: Some(Uuid::new_v4()),
        correlation_id: Uuid::new_v4(),
        trace: Default::default(),
        message: event,
    }
}

/// A fresh order of `owner`, placed now.
pub(crate) fn placed(owner: Uuid) -> order::OrderPlaced {
    order::OrderPlaced {
        user_id: Some(owner),
        ..order_placed("Jane Roe", Utc::now())
    }
}

pub(crate) fn placed_event(owner: Uuid) -> Event {
    Event::Order(order::Event::OrderPlaced(placed(owner)))
}

/// The delivery of order `order_id`, now: an event that does not name the owner.
pub(crate) fn delivered_event(order_id: Uuid) -> Event {
    Event::Order(order::Event::OrderDelivered(order::OrderDelivered {
        order_id,
        delivered_at: Utc::now(),
    }))
}

/// A purchase of `owner` by the example card, requested now.
pub(crate) fn requested_event(owner: Uuid, purchase_id: Uuid) -> Event {
    let card = MaskedCard::new(
        &CardNumber::parse("card_number", EXAMPLE_CARD_NUMBER).expect("a card number"),
        CardExpiry::parse("card_expiry", "12/30").expect("an expiry"),
        "fp_3b5c".to_owned(),
    );
    let usd = Currency::parse("currency", "USD").expect("USD");
    Event::Purchase(purchase::Event::PurchaseRequested(purchase::PurchaseRequested {
        purchase_id,
        user_id: owner,
        username: purchase::Username::parse("jdoe").expect("a username"),
        amount: Money::from_minor(10_050, usd).expect("an amount"),
        payment_method: purchase::PaymentMethod::CreditCard,
        card,
        payment_token: "tok_secret_1".to_owned(),
        order_id: None,
        transaction_date: Utc::now(),
        requested_at: Utc::now(),
    }))
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) authorization: String,
    pub(crate) body: String,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// Whether the signature is the one `secret` gives.
    pub(crate) fn verifies(&self, secret: &WebhookSecret) -> bool {
        let timestamp: i64 = self.timestamp.parse().expect("unix seconds");
        self.signature
            .split(' ')
            .any(|candidate| candidate == secret.sign(&self.id, timestamp, self.body.as_bytes()))
    }
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// 200 to everything.
    Accept,
    /// `status` the first time a message id is seen, 200 afterwards.
    FirstThen(u16),
    /// `status` to everything.
    Always(u16),
    /// Never answers: the notifier's timeout ends each attempt.
    Hang,
    /// 200 to everything, each after this long.
    After(Duration),
}

/// A webhook endpoint in the test, recording every request.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) async fn start(answer: Answer) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.expect("a port"), answer)
    }

    pub(crate) fn start_on(listener: TcpListener, answer: Answer) -> Self {
        let port = listener.local_addr().expect("bound").port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state((received.clone(), answer));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `count` distinct messages arrived; all requests, in order of arrival.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(&format!("{count} messages at the receiver"), DEADLINE, || async {
            let received = self.received();
            let mut ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            (ids.len() >= count).then_some(received.clone())
        })
        .await
    }
}

type ReceiverState = (Arc<Mutex<Vec<Received>>>, Answer);

async fn receive(State((received, answer)): State<ReceiverState>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let request = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        authorization: header("authorization"),
        body,
    };
    let seen_before = {
        let mut all = received.lock().expect("lock");
        let seen = all.iter().any(|r| r.id == request.id);
        all.push(request);
        seen
    };
    let status = match answer {
        Answer::Accept => 200,
        Answer::FirstThen(status) if !seen_before => status,
        Answer::FirstThen(_) => 200,
        Answer::Always(status) => status,
        Answer::Hang => std::future::pending().await,
        Answer::After(delay) => {
            tokio::time::sleep(delay).await;
            200
        }
    };
    StatusCode::from_u16(status).expect("a status")
}
