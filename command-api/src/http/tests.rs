//! The HTTP edge against a bus answering from memory: request parsing, idempotency keys and the
//! mapping of verdicts to answers, in milliseconds and without Kafka. What reaches the log and
//! back is tested against the real broker under `tests/`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use domain::money::{Currency, Money};
use domain::pricing::Sku;
use domain::product::ProductName;
use domain::{order, purchase, Command, Message as _, Rejection};
use futures::future::BoxFuture;
use service_kit::auth::{CATALOG_WRITE, ORDERS_MANAGE, ORDERS_WRITE, PURCHASES_REFUND, PURCHASES_WRITE};
use service_kit::kafka::Envelope;
use service_kit::metrics::Registry;
use service_kit::testing::{bearer, test_auth, TEST_FINGERPRINT_KEY};
use tower::ServiceExt;
use uuid::Uuid;

use super::{router, ApiContext};
use crate::bus::{CommandBus, SubmitError};
use crate::catalog::{Catalog, CatalogEntry, CatalogError};
use crate::outcome::{Outcome, Refusal, Verdict, WrittenEvent};
use crate::payments::{Fingerprinter, SandboxGateway};

/// A command as the bus took it: its id, aggregate and request digest.
#[derive(Debug, Clone, PartialEq)]
struct Submitted {
    command_id: Uuid,
    aggregate_id: Uuid,
    request_digest: Option<String>,
}

/// A catalog that sells one product: `TEA-1`, "Green tea", at 4.50 USD.
#[derive(Debug)]
struct MemoryCatalog(HashMap<Sku, CatalogEntry>);

impl MemoryCatalog {
    fn tea() -> Self {
        let sku = Sku::parse("TEA-1").expect("valid");
        let entry = CatalogEntry {
            sku: sku.clone(),
            name: ProductName::parse("Green tea").expect("valid"),
            price: Money::from_minor(450, Currency::parse("currency", "USD").expect("known")).expect("valid"),
        };
        Self(HashMap::from([(sku, entry)]))
    }
}

impl Catalog for MemoryCatalog {
    fn entries<'a>(&'a self, skus: &'a [Sku]) -> BoxFuture<'a, Result<HashMap<Sku, CatalogEntry>, CatalogError>> {
        let found = skus
            .iter()
            .filter_map(|sku| self.0.get(sku).map(|entry| (sku.clone(), entry.clone())))
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// Answers every command with one verdict, and remembers what it was sent.
#[derive(Debug, Clone)]
struct MemoryBus {
    verdict: Verdict,
    submitted: Arc<Mutex<Vec<Submitted>>>,
    commands: Arc<Mutex<Vec<Command>>>,
}

impl MemoryBus {
    fn answering(verdict: Verdict) -> Self {
        Self {
            verdict,
            submitted: Arc::default(),
            commands: Arc::default(),
        }
    }

    fn submitted(&self) -> Vec<Submitted> {
        self.submitted.lock().expect("not poisoned").clone()
    }

    /// The commands sent, in order.
    fn commands(&self) -> Vec<Command> {
        self.commands.lock().expect("not poisoned").clone()
    }
}

impl CommandBus for MemoryBus {
    fn is_listening(&self) -> bool {
        true
    }

    fn submit(
        &self,
        command: &Envelope<Command>,
        request_digest: Option<&str>,
    ) -> impl Future<Output = Result<Outcome, SubmitError>> + Send {
        let submitted = Submitted {
            command_id: command.id,
            aggregate_id: command.message.aggregate_id(),
            request_digest: request_digest.map(str::to_owned),
        };
        self.commands
            .lock()
            .expect("not poisoned")
            .push(command.message.clone());
        self.submitted.lock().expect("not poisoned").push(submitted.clone());
        let outcome = Outcome {
            command_id: submitted.command_id,
            aggregate_id: submitted.aggregate_id,
            request_digest: submitted.request_digest,
            verdict: self.verdict.clone(),
        };
        std::future::ready(Ok(outcome))
    }
}

fn accepted() -> Verdict {
    Verdict::Accepted {
        events: vec![WrittenEvent {
            event_type: "orderstream.order.placed.v2".to_owned(),
            sequence: 1,
            partition: 0,
            offset: 7,
        }],
        consistency_token: "token".to_owned(),
    }
}

/// What the edge answered: status, `Content-Type`, the named header and the JSON body.
struct Answer {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: serde_json::Value,
}

impl Answer {
    /// Asserts a refusal with `status` naming `field`; `case` says which request it answers.
    fn assert_refused(&self, case: &str, status: StatusCode, field: &str) {
        assert_eq!(self.status, status, "{case}: {}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{case}");
        assert_eq!(self.body["field"], field, "{case}: {}", self.body);
    }
}

/// POSTs `body` to `path` with a token carrying `scopes` and the extra `headers`.
async fn post(bus: &MemoryBus, path: &str, scopes: &[&str], headers: &[(&str, &str)], body: &str) -> Answer {
    send(bus, Method::POST, path, scopes, headers, body).await
}

/// Sends `body` to `path` with `method` and a token carrying `scopes` and the extra `headers`.
async fn send(
    bus: &MemoryBus,
    method: Method,
    path: &str,
    scopes: &[&str],
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let context = ApiContext {
        bus: bus.clone(),
        decider_ready: Arc::default(),
        metrics: Registry::default(),
        gateway: Arc::new(SandboxGateway::default()),
        fingerprints: Fingerprinter::new(TEST_FINGERPRINT_KEY),
        verifier: test_auth().verifier().expect("test auth"),
        catalog: Arc::new(MemoryCatalog::tea()),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, bearer(scopes))
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_owned())).expect("request");
    let response = router(context)
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

const ORDERS: &str = "/api/v1/orders";
const CONFIRM: &str = "/api/v1/orders/8f1c7a7e-3c55-4e0c-9f39-7d7c4b1d7a01/confirm";

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_naming_it_and_nothing_is_sent() {
    let bus = MemoryBus::answering(accepted());
    for (body, field) in [
        (r#"{"name": 5}"#, "name"),
        (r#"{"note": "n"}"#, "name"),
        (
            r#"{"name": "Ada", "items": [{"sku": "A-1", "name": "Pen", "quantity": "two", "unit_price": 1}], "currency": "USD"}"#,
            "items[0].quantity",
        ),
    ] {
        let answer = post(&bus, ORDERS, &[ORDERS_WRITE], &[], body).await;
        answer.assert_refused(body, StatusCode::UNPROCESSABLE_ENTITY, field);
        assert_eq!(answer.body["type"], "/problems/invalid-field", "{}", answer.body);
    }
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_400() {
    let bus = MemoryBus::answering(accepted());
    for body in [
        "{\"name\":",
        "[1]",
        "",
        "{\"name\":\"A\"} {\"name\":\"B\"}",
        "\u{feff}{\"name\":\"A\"}",
    ] {
        let answer = post(&bus, ORDERS, &[ORDERS_WRITE], &[], body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(answer.body["type"], "/problems/malformed-body", "{}", answer.body);
    }
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn a_card_number_of_the_wrong_type_is_named_but_never_echoed() {
    let bus = MemoryBus::answering(accepted());
    let body = r#"{"username": "ada", "amount": 10, "currency": "USD", "payment_method": "credit_card",
        "card_holder_name": "Ada", "card_number": 4111111111111111, "card_expiry": "12/30",
        "card_cvc": "123", "transaction_date": "2024-01-01T00:00:00Z"}"#;
    let answer = post(&bus, "/api/v1/purchases", &[PURCHASES_WRITE], &[], body).await;
    answer.assert_refused("card number", StatusCode::UNPROCESSABLE_ENTITY, "card_number");
    assert!(!answer.body.to_string().contains("4111"), "{}", answer.body);
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn an_accepted_order_answers_201_with_its_location_version_and_token() {
    let bus = MemoryBus::answering(accepted());
    let answer = post(&bus, ORDERS, &[ORDERS_WRITE], &[], r#"{"name": "Ada"}"#).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let [submitted] = bus.submitted().try_into().expect("one command");
    assert_eq!(
        answer.headers[header::LOCATION],
        format!("/api/v1/orders/{}", submitted.aggregate_id)
    );
    assert_eq!(answer.headers[header::ETAG], "\"1\"");
    assert_eq!(answer.body["consistency_token"], "token");
    assert_eq!(answer.body["order_id"], submitted.aggregate_id.to_string());
}

#[tokio::test]
async fn each_verdict_that_is_not_an_acceptance_has_its_status_and_type() {
    let cases = [
        (
            Verdict::Rejected {
                rejection: Rejection::Order(order::Rejection::StaleVersion { expected: 2, actual: 3 }),
            },
            StatusCode::PRECONDITION_FAILED,
            "/problems/stale-version",
        ),
        (
            Verdict::Refused {
                refusal: Refusal::IdempotencyKeyReused,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/idempotency-key-reused",
        ),
        (
            Verdict::Refused {
                refusal: Refusal::AggregateQuarantined {
                    aggregate_id: Uuid::nil(),
                },
            },
            StatusCode::CONFLICT,
            "/problems/aggregate-quarantined",
        ),
    ];
    for (verdict, status, problem) in cases {
        let bus = MemoryBus::answering(verdict);
        let answer = post(&bus, CONFIRM, &[ORDERS_MANAGE], &[("if-match", "\"2\"")], "").await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.body["type"], problem, "{}", answer.body);
    }
}

#[tokio::test]
async fn a_keyed_retry_is_the_same_command_and_another_body_another_request() {
    let bus = MemoryBus::answering(accepted());
    let key = [("idempotency-key", "checkout-1")];
    for body in [r#"{"name": "Ada"}"#, r#"{"name": "Ada"}"#, r#"{"name": "Bob"}"#] {
        let answer = post(&bus, ORDERS, &[ORDERS_WRITE], &key, body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let [first, retry, other] = bus.submitted().try_into().expect("three commands");
    assert_eq!(first, retry);
    assert!(first.request_digest.is_some());
    assert_eq!(other.command_id, first.command_id);
    assert_eq!(other.aggregate_id, first.aggregate_id);
    assert_ne!(other.request_digest, first.request_digest);
}

#[tokio::test]
async fn a_malformed_idempotency_key_or_version_is_a_400_naming_the_header() {
    let bus = MemoryBus::answering(accepted());
    let long_key = "k".repeat(201);
    let answer = post(
        &bus,
        ORDERS,
        &[ORDERS_WRITE],
        &[("idempotency-key", &long_key)],
        r#"{"name": "Ada"}"#,
    )
    .await;
    answer.assert_refused("long key", StatusCode::BAD_REQUEST, "Idempotency-Key");
    let acting = MemoryBus::answering(accepted());
    for (if_match, expected) in [("\"7\"", Some(7)), ("7", Some(7)), ("*", None)] {
        let answer = post(&acting, CONFIRM, &[ORDERS_MANAGE], &[("if-match", if_match)], "").await;
        assert_eq!(answer.status, StatusCode::OK, "{if_match}: {}", answer.body);
        let Some(Command::Order(order::Command::ConfirmOrder(confirm))) = acting.commands().pop() else {
            panic!("{if_match}: not a confirmation");
        };
        assert_eq!(confirm.expected_version, expected, "{if_match}");
    }
    for version in [
        "\"three\"",
        "W/\"3\"",
        "\"3",
        "\"\"",
        "\u{e9}",
        "\"03\"",
        "+3",
        "\"1\", \"2\"",
    ] {
        let answer = post(&bus, CONFIRM, &[ORDERS_MANAGE], &[("if-match", version)], "").await;
        answer.assert_refused(version, StatusCode::BAD_REQUEST, "If-Match");
    }
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn an_accepted_refund_is_a_202_saying_it_is_requested() {
    let bus = MemoryBus::answering(accepted());
    let purchase_id = "0b8a7c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b";
    let path = format!("/api/v1/purchases/{purchase_id}/refunds");
    let body = r#"{"amount": 40.00, "reason": "damaged"}"#;
    let refund = || {
        post(
            &bus,
            &path,
            &[PURCHASES_REFUND],
            &[("idempotency-key", "refund-1")],
            body,
        )
    };
    let answer = refund().await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["status"], "refund_requested");
    assert_eq!(answer.body["purchase_id"], purchase_id);
    assert_eq!(answer.body["consistency_token"], "token");
    let refund_id: Uuid = answer.body["refund_id"].as_str().unwrap().parse().unwrap();
    let again = refund().await;
    assert_eq!(
        again.body["refund_id"],
        refund_id.to_string(),
        "the key names the refund"
    );

    let refund_id = Uuid::from_u128(3);
    let pending = MemoryBus::answering(Verdict::Rejected {
        rejection: Rejection::Purchase(purchase::Rejection::RefundAlreadyRequested {
            purchase_id: purchase_id.parse().unwrap(),
            refund_id,
        }),
    });
    let answer = post(&pending, &path, &[PURCHASES_REFUND], &[], body).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.body["type"], "/problems/refund-already-requested");
    assert_eq!(answer.body["refund_id"], refund_id.to_string());
}

/// Places an order of `items` (a JSON array) in USD as a user.
async fn place_with(bus: &MemoryBus, items: &str) -> Answer {
    let body = format!(r#"{{"name": "Ada", "currency": "USD", "items": {items}}}"#);
    post(bus, ORDERS, &[ORDERS_WRITE], &[], &body).await
}

#[tokio::test]
async fn an_item_the_catalog_sells_takes_its_name_and_price_and_is_reserved() {
    let bus = MemoryBus::answering(accepted());
    let answer = place_with(
        &bus,
        r#"[{"sku": "TEA-1", "quantity": 2}, {"sku": "MUG-9", "name": "Mug", "quantity": 1, "unit_price": 3},
            {"sku": "TEA-1", "quantity": 1, "unit_price": 4.50}]"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["totals"]["subtotal"], "16.50", "{}", answer.body);
    let [command] = bus.commands().try_into().expect("one command");
    let Command::Order(order::Command::PlaceOrder(place)) = command else {
        panic!("{command:?}")
    };
    let items = place.details.expect("priced").items;
    assert_eq!(items[0].name.as_str(), "Green tea");
    let catalog: Vec<(String, u32)> = place
        .catalog_items
        .expect("tracked")
        .into_iter()
        .map(|line| (line.sku.as_str().to_owned(), line.quantity.get()))
        .collect();
    assert_eq!(
        catalog,
        [("TEA-1".to_owned(), 3)],
        "one line per SKU, the unknown one not reserved"
    );
}

#[tokio::test]
async fn another_price_for_a_catalog_item_is_a_409_with_the_current_one_and_nothing_is_sent() {
    let bus = MemoryBus::answering(accepted());
    let answer = place_with(&bus, r#"[{"sku": "TEA-1", "quantity": 1, "unit_price": 4.00}]"#).await;
    answer.assert_refused("another price", StatusCode::CONFLICT, "items[0].unit_price");
    assert_eq!(answer.body["type"], "/problems/price-changed");
    assert_eq!(answer.body["current_price"], "4.50");
    assert_eq!(answer.body["currency"], "USD");
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn an_item_outside_the_catalog_still_needs_its_price() {
    let bus = MemoryBus::answering(accepted());
    let answer = place_with(&bus, r#"[{"sku": "MUG-9", "name": "Mug", "quantity": 1}]"#).await;
    answer.assert_refused("no price", StatusCode::UNPROCESSABLE_ENTITY, "items[0].unit_price");
    assert_eq!(bus.submitted(), []);
}

#[tokio::test]
async fn the_catalog_takes_staff_and_names_a_bad_sku_or_quantity() {
    let bus = MemoryBus::answering(accepted());
    let tea = r#"{"name": "Green tea", "price": 4.5, "currency": "USD"}"#;
    let put = |scopes| send(&bus, Method::PUT, "/api/v1/products/TEA-1", scopes, &[], tea);
    let answer = put(&[ORDERS_WRITE]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    for (path, body, field) in [
        (
            "/api/v1/products/TEA-1/stock-receipts",
            r#"{"quantity": 0}"#,
            "quantity",
        ),
        (
            "/api/v1/products/TEA-1/stock-adjustments",
            r#"{"quantity": 0, "reason": "x"}"#,
            "quantity",
        ),
        (
            "/api/v1/products/TEA-1/stock-adjustments",
            r#"{"quantity": -3}"#,
            "reason",
        ),
        (
            "/api/v1/products/TEA-1/stock-receipts",
            r#"{"quantity": 1.5}"#,
            "quantity",
        ),
    ] {
        let answer = post(&bus, path, &[CATALOG_WRITE], &[], body).await;
        answer.assert_refused(body, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    assert_eq!(bus.submitted(), []);
    let answer = put(&[CATALOG_WRITE]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let [submitted] = bus.submitted().try_into().expect("one command");
    let sku = Sku::parse("TEA-1").expect("valid");
    assert_eq!(submitted.aggregate_id, domain::product::product_id(&sku));
}

#[tokio::test]
async fn a_nul_or_control_character_in_any_catalog_text_is_a_422_naming_it_and_nothing_is_sent() {
    let bus = MemoryBus::answering(accepted());
    // JSON escapes, so the body carries the control character itself; and the same in a path.
    for (escaped, in_path) in [(r"\u0000", "%00"), (r"\u0007", "%07"), (r"\u001b", "%1B")] {
        let bad = format!(r#""Green{escaped}tea""#);
        let product = |field: &str| {
            let mut body =
                serde_json::json!({"name": "Green tea", "description": "Leaves", "price": 4.5, "currency": "USD"});
            body[field] = serde_json::from_str(&bad).expect("a JSON string");
            body.to_string()
        };
        let cases = [
            (
                "name",
                Method::PUT,
                "/api/v1/products/TEA-1".to_owned(),
                product("name"),
            ),
            (
                "description",
                Method::PUT,
                "/api/v1/products/TEA-1".to_owned(),
                product("description"),
            ),
            (
                "reason",
                Method::POST,
                "/api/v1/products/TEA-1/stock-adjustments".to_owned(),
                format!(r#"{{"quantity": -1, "reason": {bad}}}"#),
            ),
            (
                "sku",
                Method::POST,
                format!("/api/v1/products/TEA{in_path}1/stock-receipts"),
                r#"{"quantity": 1}"#.to_owned(),
            ),
        ];
        for (field, method, path, body) in cases {
            let answer = send(&bus, method, &path, &[CATALOG_WRITE], &[], &body).await;
            answer.assert_refused(&format!("{field} {escaped}"), StatusCode::UNPROCESSABLE_ENTITY, field);
        }
    }
    assert_eq!(bus.submitted(), []);
}
