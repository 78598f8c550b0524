//! `POST /api/v1/purchases` and refunds, the payment reactor, and card data staying out of Kafka.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_api::bus::KafkaBus;
use command_api::payments::{
    CardDetails, Charge, ChargeOutcome, GatewayError, PaymentGateway, Refund, Refunded, SandboxGateway,
};
use command_api::reactor::{self, ReactorSettings};
use futures::future::BoxFuture;
use rdkafka::message::Headers;
use rdkafka::Message;
use serde_json::{json, Value};
use service_kit::metrics::Registry;
use service_kit::stream::CancellationToken;
use service_kit::testing::{assert_no_card_data, example_purchase, wait_until, Isolation};
use uuid::Uuid;

use crate::helpers::{
    accepted_purchase, assert_problem, committed_records, config, header, purchase_events, spawn_app, spawn_app_with,
    TestApp,
};

/// The purchase processor's own example, as clients send it today.
pub(crate) fn seed_purchase() -> Value {
    example_purchase("4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8".parse().unwrap())
}

async fn authorized_purchase(app: &TestApp) -> String {
    let purchase_id = accepted_purchase(app.post("/api/v1/purchases", &seed_purchase(), None).await).await;
    purchase_events(&app.isolation, &purchase_id, "orderstream.purchase.authorized.v2").await;
    purchase_id
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_purchase_is_accepted_and_authorized_by_the_reactor() {
    let app = spawn_app().await;
    let response = app.post("/api/v1/purchases", &seed_purchase(), None).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert!(!body["consistency_token"].as_str().unwrap().is_empty());
    let purchase_id = body["purchase_id"].as_str().unwrap();

    let events = purchase_events(&app.isolation, purchase_id, "orderstream.purchase.authorized.v2").await;
    let types: Vec<_> = events.iter().map(|e| header(e, "ce_type").unwrap()).collect();
    assert_eq!(
        types,
        [
            "orderstream.purchase.requested.v1",
            "orderstream.purchase.authorized.v2"
        ]
    );
    let requested: Value = serde_json::from_slice(events[0].payload().unwrap()).unwrap();
    assert_eq!(requested["amount"], json!({"minor": 10050, "currency": "USD"}));
    assert_eq!(requested["user_id"], "4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8");
    assert_eq!(requested["username"], "first_user");
    assert_eq!(requested["payment_method"], "credit_card");
    assert_eq!(requested["card"]["brand"], "visa");
    assert_eq!(requested["card"]["last4"], "4242");
    assert_eq!(requested["card"]["fingerprint"].as_str().unwrap().len(), 64);
    assert!(requested["payment_token"].as_str().unwrap().starts_with("tok_sandbox_"));
    assert_eq!(header(&events[1], "ce_sequence"), Some("2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decline_test_cards_are_declined_with_their_reason() {
    let app = spawn_app().await;
    for (card, reason) in [
        ("4000 0000 0000 0002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
    ] {
        let mut purchase = seed_purchase();
        purchase["card_number"] = json!(card);
        let response = app.post("/api/v1/purchases", &purchase, None).await;
        assert_eq!(response.status(), 202);
        let purchase_id = response.json::<Value>().await.unwrap()["purchase_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let events = purchase_events(&app.isolation, &purchase_id, "orderstream.purchase.declined.v2").await;
        let declined: Value = serde_json::from_slice(events.last().unwrap().payload().unwrap()).unwrap();
        assert_eq!(declined["reason"], reason);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_validation_rule_names_its_field_and_writes_nothing() {
    let app = spawn_app().await;
    let future = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let cases: Vec<(&str, Value)> = vec![
        // Absent or null, `user_id` is the caller; when given it must be a UUID.
        ("user_id", json!("not-a-uuid")),
        ("user_id", json!(42)),
        ("username", json!("   ")),
        ("username", json!("u".repeat(101))),
        ("currency", json!("XYZ")),
        ("currency", json!("usd")),
        ("amount", Value::Null),
        ("amount", json!("100.50")),
        ("amount", json!(0)),
        ("amount", json!(-5)),
        ("amount", json!(100.505)),
        ("amount", json!(1e9)),
        ("payment_method", json!("bitcoin")),
        ("card_holder_name", json!("")),
        ("card_number", json!("4242")),
        ("card_number", json!("4242 4242 4242 4241")),
        ("card_number", json!("4242-4242-4242-4242")),
        ("card_number", json!(4242424242424242_u64)),
        ("card_expiry", json!("13/30")),
        ("card_expiry", json!("1230")),
        ("card_expiry", json!("12/20")),
        ("card_cvc", json!("12")),
        ("card_cvc", json!("12345")),
        ("card_cvc", json!("12a")),
        ("transaction_date", json!("yesterday")),
        ("transaction_date", json!(future)),
    ];
    for (field, value) in cases {
        let mut purchase = seed_purchase();
        purchase[field] = value.clone();
        let problem = assert_problem(app.post("/api/v1/purchases", &purchase, None).await, 422, Some(field)).await;
        let text = problem.to_string();
        assert!(
            !text.contains("4242424242424242") && !text.contains("4242 4242"),
            "{text}"
        );
    }
    // A card is charged now, whatever date the transaction is given.
    let mut backdated = seed_purchase();
    backdated["transaction_date"] = json!("2001-01-01T00:00:00Z");
    backdated["card_expiry"] = json!("01/20");
    assert_problem(
        app.post("/api/v1/purchases", &backdated, None).await,
        422,
        Some("card_expiry"),
    )
    .await;
    // Currency decides how many decimals an amount may have.
    for (currency, amount, ok) in [
        ("JPY", json!(100), true),
        ("JPY", json!(1.5), false),
        ("KWD", json!(1.005), true),
        ("KWD", json!(1.0005), false),
    ] {
        let mut purchase = seed_purchase();
        purchase["currency"] = json!(currency);
        purchase["amount"] = amount;
        let response = app.post("/api/v1/purchases", &purchase, None).await;
        if ok {
            assert_eq!(response.status(), 202, "{currency} {:?}", response.text().await);
        } else {
            assert_problem(response, 422, Some("amount")).await;
        }
    }
    let requests = committed_records(&app.isolation, &app.isolation.topics.commands)
        .await
        .into_iter()
        .filter(|c| header(c, "ce_type") == Some("orderstream.purchase.request.v1"))
        .count();
    assert_eq!(requests, 2, "only the two valid purchases reached Kafka");
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_never_exceed_the_authorized_amount() {
    let app = spawn_app().await;
    let purchase_id = authorized_purchase(&app).await;
    let refunds = format!("/api/v1/purchases/{purchase_id}/refunds");

    let damaged = json!({"amount": 40.00, "reason": "damaged"});
    let refund = || app.post(&refunds, &damaged, Some("refund-1"));
    let first = refund().await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let retried = refund().await;
    assert_eq!(
        retried.json::<Value>().await.unwrap(),
        first,
        "a retried refund is not refunded twice"
    );

    let over = assert_problem(
        app.post(&refunds, &json!({"amount": 60.51, "reason": "too much"}), None)
            .await,
        409,
        None,
    )
    .await;
    assert_eq!(over["type"], "/problems/refund-exceeds-refundable");
    assert_eq!(over["refundable"], "60.50");
    assert_problem(
        app.post(&refunds, &json!({"amount": 1.001, "reason": "x"}), None).await,
        422,
        Some("amount"),
    )
    .await;
    assert_problem(
        app.post(&refunds, &json!({"amount": 10, "reason": " "}), None).await,
        422,
        Some("reason"),
    )
    .await;
    assert_eq!(
        app.post(&refunds, &json!({"amount": 60.50, "reason": "rest"}), None)
            .await
            .status(),
        202
    );
    assert_problem(
        app.post(&refunds, &json!({"amount": 0.01, "reason": "more"}), None)
            .await,
        409,
        None,
    )
    .await;

    // Both refunds are paid back by the gateway and recorded, each once.
    let refunded = wait_until("both refunds to be recorded", Duration::from_secs(30), || async {
        let events = purchase_events(&app.isolation, &purchase_id, "orderstream.purchase.refunded.v1").await;
        let refunded: Vec<Value> = events
            .iter()
            .filter(|e| header(e, "ce_type") == Some("orderstream.purchase.refunded.v1"))
            .map(|e| serde_json::from_slice(e.payload().unwrap()).unwrap())
            .collect();
        (refunded.len() == 2).then_some(refunded)
    })
    .await;
    let mut minors: Vec<i64> = refunded
        .iter()
        .map(|r| r["amount"]["minor"].as_i64().unwrap())
        .collect();
    minors.sort();
    assert_eq!(minors, [4000, 6050]);
    let forty = refunded.iter().find(|r| r["amount"]["minor"] == 4000).unwrap();
    assert_eq!(forty["refund_id"], first["refund_id"]);

    let unknown = format!("/api/v1/purchases/{}/refunds", Uuid::new_v4());
    assert_problem(
        app.post(&unknown, &json!({"amount": 1, "reason": "x"}), None).await,
        404,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_purchase_cannot_be_refunded() {
    let app = spawn_app().await;
    let mut purchase = seed_purchase();
    purchase["card_number"] = json!("4000000000000002");
    let purchase_id = app
        .post("/api/v1/purchases", &purchase, None)
        .await
        .json::<Value>()
        .await
        .unwrap()["purchase_id"]
        .as_str()
        .unwrap()
        .to_owned();
    purchase_events(&app.isolation, &purchase_id, "orderstream.purchase.declined.v2").await;
    let refunds = format!("/api/v1/purchases/{purchase_id}/refunds");
    let problem = assert_problem(
        app.post(&refunds, &json!({"amount": 1, "reason": "x"}), None).await,
        409,
        None,
    )
    .await;
    assert_eq!(problem["type"], "/problems/purchase-not-refundable");
    assert_eq!(problem["purchase_status"], "declined");
}

#[tokio::test(flavor = "multi_thread")]
async fn card_numbers_and_cvcs_never_reach_kafka() {
    let app = spawn_app().await;
    let mut spaced = seed_purchase();
    spaced["card_number"] = json!("4242 4242 4242 4242");
    for purchase in [seed_purchase(), spaced] {
        let purchase_id = accepted_purchase(
            app.post("/api/v1/purchases", &purchase, Some(&Uuid::new_v4().to_string()))
                .await,
        )
        .await;
        purchase_events(&app.isolation, &purchase_id, "orderstream.purchase.authorized.v2").await;
    }
    let topics = &app.isolation.topics;
    let mut scanned = 0;
    for topic in [&topics.commands, &topics.events, &topics.outcomes, &topics.verdicts] {
        for record in committed_records(&app.isolation, topic).await {
            let mut bytes = record.payload().unwrap_or_default().to_vec();
            bytes.extend_from_slice(record.key().unwrap_or_default());
            if let Some(headers) = record.headers() {
                for h in headers.iter() {
                    bytes.extend_from_slice(h.value.unwrap_or_default());
                }
            }
            assert_no_card_data(&String::from_utf8_lossy(&bytes), &format!("on {topic}"));
            scanned += 1;
        }
    }
    assert!(scanned >= 8, "scanned only {scanned} records");
}

/// A gateway that counts what it is asked to do, in front of the sandbox.
#[derive(Debug, Default)]
pub(crate) struct CountingGateway {
    sandbox: SandboxGateway,
    charged: Mutex<Vec<Uuid>>,
    refunded: Mutex<Vec<Uuid>>,
}

impl CountingGateway {
    /// The idempotency keys (purchase ids) of every charge asked for, in order.
    pub(crate) fn charged(&self) -> Vec<Uuid> {
        self.charged.lock().unwrap().clone()
    }

    /// The refund ids of every refund asked for, in order.
    pub(crate) fn refunded(&self) -> Vec<Uuid> {
        self.refunded.lock().unwrap().clone()
    }
}

impl PaymentGateway for CountingGateway {
    fn tokenize<'a>(&'a self, card: CardDetails<'a>) -> BoxFuture<'a, Result<String, GatewayError>> {
        self.sandbox.tokenize(card)
    }

    fn charge<'a>(&'a self, charge: &'a Charge) -> BoxFuture<'a, Result<ChargeOutcome, GatewayError>> {
        self.charged.lock().unwrap().push(charge.idempotency_key);
        self.sandbox.charge(charge)
    }

    fn refund<'a>(&'a self, refund: &'a Refund) -> BoxFuture<'a, Result<Refunded, GatewayError>> {
        self.refunded.lock().unwrap().push(refund.refund_id);
        self.sandbox.refund(refund)
    }
}

/// A payment reactor of its own consumer group over a test's topics, with a counting gateway.
pub(crate) struct TestReactor {
    pub(crate) gateway: Arc<CountingGateway>,
    metrics: Registry,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), reactor::ReactorError>>,
}

impl TestReactor {
    pub(crate) fn start(isolation: &Isolation, group: &str) -> Self {
        let bus = KafkaBus::new(
            &isolation.kafka,
            &isolation.topics,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .unwrap();
        let gateway = Arc::new(CountingGateway::default());
        let settings = ReactorSettings {
            kafka: isolation.kafka.clone(),
            topics: isolation.topics.clone(),
            group: group.to_owned(),
        };
        let metrics = Registry::default();
        let reactor_metrics = reactor::ReactorMetrics::register(&metrics);
        let stop = CancellationToken::new();
        let (stopped, dyn_gateway) = (stop.clone(), gateway.clone() as Arc<dyn PaymentGateway>);
        let task =
            tokio::spawn(async move { reactor::run(&settings, &reactor_metrics, &bus, &dyn_gateway, &stopped).await });
        Self {
            gateway,
            metrics,
            stop,
            task,
        }
    }

    /// The value of the unlabelled counter `name`.
    pub(crate) fn metric(&self, name: &str) -> u64 {
        self.metrics
            .render()
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    pub(crate) async fn stop(self) -> Arc<CountingGateway> {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.gateway
    }
}

/// Starts a command-api without its payment reactor, so that a test runs its own, and waits until
/// it is ready.
async fn spawn_app_without_reactor(isolation: &Isolation) -> TestApp {
    let mut config = config(isolation);
    config.payment_reactor = false;
    let app = spawn_app_with(isolation.clone(), config).await;
    app.wait_ready().await;
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reactor_in_a_fresh_group_charges_no_settled_purchase_again() {
    // No reactor in the service: the test runs its own, one consumer group after the other.
    let isolation = Isolation::new();
    let app = spawn_app_without_reactor(&isolation).await;
    let mut declining = seed_purchase();
    declining["card_number"] = json!("4000000000000002");
    let approved = accepted_purchase(app.post("/api/v1/purchases", &seed_purchase(), None).await).await;
    let declined = accepted_purchase(app.post("/api/v1/purchases", &declining, None).await).await;

    let first = TestReactor::start(&isolation, "first");
    purchase_events(&isolation, &approved, "orderstream.purchase.authorized.v2").await;
    purchase_events(&isolation, &declined, "orderstream.purchase.declined.v2").await;
    let mut charged = first.stop().await.charged();
    charged.sort();
    let mut settled: Vec<Uuid> = [&approved, &declined].map(|id| id.parse().unwrap()).to_vec();
    settled.sort();
    assert_eq!(charged, settled, "the first reactor charges each purchase once");

    // A fresh group reads the whole log again, as after losing its offsets.
    let open = accepted_purchase(app.post("/api/v1/purchases", &seed_purchase(), None).await).await;
    let second = TestReactor::start(&isolation, "second");
    purchase_events(&isolation, &open, "orderstream.purchase.authorized.v2").await;
    wait_until(
        "both settled requests to be skipped",
        Duration::from_secs(30),
        || async { (second.metric("orderstream_reactor_skipped_settled_total") == 2).then_some(()) },
    )
    .await;
    let charged = second.stop().await.charged();
    assert_eq!(
        charged,
        [open.parse::<Uuid>().unwrap()],
        "only the open purchase is charged"
    );
    let verdicts = committed_records(&isolation, &isolation.topics.commands)
        .await
        .into_iter()
        .filter(|r| {
            matches!(
                header(r, "ce_type"),
                Some("orderstream.purchase.record-authorization.v1" | "orderstream.purchase.record-decline.v1")
            )
        })
        .count();
    assert_eq!(verdicts, 3, "one verdict command per purchase");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_is_paid_back_by_the_gateway_before_it_is_recorded_once() {
    let isolation = Isolation::new();
    let app = spawn_app_without_reactor(&isolation).await;
    let reactor = TestReactor::start(&isolation, "first");
    let purchase_id = authorized_purchase(&app).await;

    let refunds = format!("/api/v1/purchases/{purchase_id}/refunds");
    let response = app
        .post(&refunds, &json!({"amount": 40.00, "reason": "damaged"}), None)
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "refund_requested");
    assert_eq!(accepted["purchase_id"], purchase_id.as_str());
    assert!(!accepted["consistency_token"].as_str().unwrap().is_empty());
    let refund_id: Uuid = accepted["refund_id"].as_str().unwrap().parse().unwrap();

    let events = purchase_events(&isolation, &purchase_id, "orderstream.purchase.refunded.v1").await;
    let types: Vec<_> = events.iter().map(|e| header(e, "ce_type").unwrap()).collect();
    assert_eq!(
        types,
        [
            "orderstream.purchase.requested.v1",
            "orderstream.purchase.authorized.v2",
            "orderstream.purchase.refund-requested.v1",
            "orderstream.purchase.refunded.v1",
        ]
    );
    let refunded: Value = serde_json::from_slice(events[3].payload().unwrap()).unwrap();
    assert_eq!(refunded["refund_id"], refund_id.to_string());
    assert_eq!(refunded["amount"], json!({"minor": 4000, "currency": "USD"}));
    assert_eq!(refunded["reason"], "damaged");
    let gateway = reactor.stop().await;
    assert_eq!(gateway.refunded(), [refund_id], "the gateway paid it back once");

    // A fresh group reads it all again, and asks the gateway for nothing.
    let again = TestReactor::start(&isolation, "second");
    wait_until(
        "the settled charge and refund to be skipped",
        Duration::from_secs(30),
        || async { (again.metric("orderstream_reactor_skipped_settled_total") == 2).then_some(()) },
    )
    .await;
    let gateway = again.stop().await;
    assert_eq!((gateway.charged(), gateway.refunded()), (vec![], vec![]));
    let recorded = committed_records(&isolation, &isolation.topics.events)
        .await
        .into_iter()
        .filter(|e| header(e, "ce_type") == Some("orderstream.purchase.refunded.v1"))
        .count();
    assert_eq!(recorded, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_key_reused_with_another_amount_is_refused_and_writes_nothing_new() {
    let app = spawn_app().await;
    let purchase = seed_purchase();
    let first = app.post("/api/v1/purchases", &purchase, Some("buy-1")).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    // Let the reactor finish with it, so the events topic is still from here on.
    purchase_events(
        &app.isolation,
        first["purchase_id"].as_str().unwrap(),
        "orderstream.purchase.authorized.v2",
    )
    .await;
    let events_before = app.isolation.records_written(&app.isolation.topics.events);

    let mut other = purchase.clone();
    other["amount"] = json!(5);
    let problem = assert_problem(
        app.post("/api/v1/purchases", &other, Some("buy-1")).await,
        422,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_eq!(
        app.isolation.records_written(&app.isolation.topics.events),
        events_before
    );
    let retry = app.post("/api/v1/purchases", &purchase, Some("buy-1")).await;
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
}
