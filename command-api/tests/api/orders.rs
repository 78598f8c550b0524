//! `POST /api/v1/orders`: the events it writes, and everything it refuses.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use service_kit::testing::Isolation;
use uuid::Uuid;

use crate::helpers::{assert_problem, committed_records, config, header, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_payload_places_an_order_and_writes_order_placed_as_a_cloudevent() {
    let app = spawn_app().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .header("traceparent", traceparent)
        .json(&json!({"name": "John Doe", "note": "First order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let order_id = body["order_id"].as_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&order_id).is_ok());
    assert!(!body["consistency_token"].as_str().unwrap().is_empty());

    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(header(event, "ce_specversion"), Some("1.0"));
    assert_eq!(header(event, "ce_type"), Some("orderstream.order.placed.v3"));
    assert_eq!(header(event, "ce_source"), Some("orderstream/command-api"));
    assert_eq!(header(event, "ce_subject"), Some(order_id.as_str()));
    assert_eq!(header(event, "ce_sequence"), Some("1"));
    assert_eq!(header(event, "content-type"), Some("application/json"));
    assert_eq!(header(event, "traceparent"), Some(traceparent));
    for topic in [&app.isolation.topics.outcomes, &app.isolation.topics.verdicts] {
        let verdicts = committed_records(&app.isolation, topic).await;
        assert_eq!(verdicts.len(), 1, "{topic}");
        assert_eq!(
            header(&verdicts[0], "traceparent"),
            Some(traceparent),
            "the verdict on {topic} carries the command's trace"
        );
    }
    assert!(header(event, "ce_id").is_some_and(|id| Uuid::parse_str(id).is_ok()));
    assert!(header(event, "ce_causationid").is_some_and(|id| Uuid::parse_str(id).is_ok()));
    assert!(header(event, "ce_time").is_some());
    use rdkafka::Message;
    assert_eq!(event.key(), Some(order_id.as_bytes()));
    let data: Value = serde_json::from_slice(event.payload().unwrap()).unwrap();
    assert_eq!(data["order_id"], order_id.as_str());
    assert_eq!(data["name"], "John Doe");
    assert_eq!(data["note"], "First order");
    assert_eq!(
        data["channel"], "api",
        "an order that names no channel is placed through the API"
    );
    assert_eq!(
        data["user_id"],
        json!(service_kit::auth::user_id_of("test-client")),
        "an order that names no user belongs to the caller"
    );

    let commands = committed_records(&app.isolation, &app.isolation.topics.commands).await;
    assert_eq!(commands.len(), 1, "the command is on the audit trail");
    assert_eq!(
        commands[0].partition(),
        event.partition(),
        "the event goes to the partition number its command came from"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_problems_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let commands_before = app.isolation.records_written(&app.isolation.topics.commands);
    let events_before = app.isolation.records_written(&app.isolation.topics.events);
    let url = format!("{}/api/v1/orders", app.address);
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    assert_problem(raw("{\"name\": \"John", "application/json").await.unwrap(), 400, None).await;
    assert_problem(raw("[\"John Doe\"]", "application/json").await.unwrap(), 400, None).await;
    assert_problem(
        raw("name=John", "application/x-www-form-urlencoded").await.unwrap(),
        415,
        None,
    )
    .await;
    let huge = format!("{{\"name\":\"x\",\"note\":\"{}\"}}", "n".repeat(100_000));
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, None).await;

    let cases = [
        (json!({}), "name"),
        (json!({"note": "no name"}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": null}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "John Doe", "note": 7}), "note"),
        (json!({"name": "John Doe", "note": "n".repeat(2001)}), "note"),
        (json!({"name": "John Doe", "order_id": "not-a-uuid"}), "order_id"),
        (json!({"name": "John Doe", "channel": "fax"}), "channel"),
        (json!({"name": "John Doe", "channel": 5}), "channel"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(app.place(&body, None).await, 422, Some(field)).await;
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
    for bad_key in ["k".repeat(201), "a\tb".to_owned()] {
        assert_problem(
            app.place(&json!({"name": "John Doe"}), Some(&bad_key)).await,
            400,
            Some("Idempotency-Key"),
        )
        .await;
    }

    assert_eq!(
        app.isolation.records_written(&app.isolation.topics.commands),
        commands_before
    );
    assert_eq!(
        app.isolation.records_written(&app.isolation.topics.events),
        events_before
    );

    // A valid order afterwards proves the stack was live while it refused the others.
    assert_eq!(app.place(&json!({"name": "John Doe"}), None).await.status(), 201);
    assert_eq!(
        app.isolation.records_written(&app.isolation.topics.commands),
        commands_before + 1
    );
    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    assert_eq!(events.len(), 1, "only the valid order produced an event");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_channel_an_order_is_placed_through_travels_on_its_event() {
    let app = spawn_app().await;
    let response = app.place(&json!({"name": "John Doe", "channel": "pos"}), None).await;
    assert_eq!(response.status(), 201);
    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    assert_eq!(events.len(), 1);
    assert_eq!(header(&events[0], "ce_type"), Some("orderstream.order.placed.v3"));
    use rdkafka::Message;
    let data: Value = serde_json::from_slice(events[0].payload().unwrap()).unwrap();
    assert_eq!(data["channel"], "pos");
}

#[tokio::test(flavor = "multi_thread")]
async fn placing_the_same_order_id_twice_conflicts() {
    let app = spawn_app().await;
    let order_id = Uuid::new_v4();
    let body = json!({"name": "John Doe", "order_id": order_id});
    assert_eq!(app.place(&body, None).await.status(), 201);
    let problem = assert_problem(app.place(&body, None).await, 409, None).await;
    assert_eq!(problem["type"], "/problems/order-already-placed");
    assert_eq!(problem["order_id"], order_id.to_string());
    assert_eq!(
        committed_records(&app.isolation, &app.isolation.topics.events)
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_returns_the_first_answer_and_writes_nothing_new() {
    let app = spawn_app().await;
    let body = json!({"name": "John Doe", "note": "First order"});
    let first = app.place(&body, Some("checkout-42")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // Sequential and concurrent retries, as a client with a flaky network would send them.
    let retries = futures::future::join_all((0..5).map(|_| app.place(&body, Some("checkout-42")))).await;
    for retry in retries {
        assert_eq!(retry.status(), 201);
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
    }
    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    assert_eq!(events.len(), 1, "retries wrote no new event");

    let other = app.place(&body, Some("checkout-43")).await;
    assert_eq!(other.status(), 201);
    assert_ne!(other.json::<Value>().await.unwrap()["order_id"], first["order_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_orders_in_flight_are_each_placed_exactly_once() {
    let app = spawn_app().await;
    let bodies: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("customer {}", i % 7)}))
        .collect();
    let responses = futures::future::join_all(bodies.iter().map(|body| app.place(body, None))).await;
    let mut ids = std::collections::HashSet::new();
    for response in responses {
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert!(ids.insert(body["order_id"].as_str().unwrap().to_owned()));
    }
    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    assert_eq!(events.len(), 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_unreachable_answers_503_with_retry_after_quickly() {
    let isolation = Isolation::new();
    let mut config = config(&isolation);
    config.kafka.kafka_brokers = format!("127.0.0.1:{}", service_kit::testing::free_port());
    config.produce_timeout = Duration::from_secs(2);
    let app = spawn_app_with(isolation, config).await;

    let started = Instant::now();
    let response = app.place(&json!({"name": "John Doe"}), None).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );
    assert!(response.headers().get("retry-after").is_some());
    assert_problem(response, 503, None).await;

    let ready = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_need_a_valid_token_with_the_right_scope() {
    let app = spawn_app().await;
    let anonymous = reqwest::Client::new();
    let url = format!("{}/api/v1/orders", app.address);
    let body = json!({"name": "John Doe"});

    let forged = service_kit::auth::mint_hs256(
        "a-different-secret-of-at-least-32-bytes!",
        "mallory",
        &[service_kit::auth::ORDERS_WRITE],
        Duration::from_secs(60),
        None,
        None,
    )
    .unwrap();
    // No token, a garbage one, a forged one and one short of the scope: each caller's
    // `Authorization`, the status, and what the `WWW-Authenticate` challenge must say.
    for (authorization, status, challenge) in [
        (None, 401, Some("Bearer")),
        (Some("Bearer not.a.jwt".to_owned()), 401, Some("invalid_token")),
        (Some(format!("Bearer {forged}")), 401, None),
        (
            Some(service_kit::testing::bearer(&[service_kit::auth::READ])),
            403,
            Some("insufficient_scope"),
        ),
    ] {
        let mut request = anonymous.post(&url).json(&body);
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        if let Some(challenge) = challenge {
            let header = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(
                header.starts_with("Bearer") && header.contains(challenge),
                "{authorization:?}: {header}"
            );
        }
        assert_problem(response, status, None).await;
    }
    let purchases = format!("{}/api/v1/purchases", app.address);
    let orders_only = service_kit::testing::bearer(&[service_kit::auth::ORDERS_WRITE]);
    let response = anonymous
        .post(&purchases)
        .header("authorization", orders_only)
        .json(&crate::purchases::seed_purchase())
        .send()
        .await
        .unwrap();
    assert_problem(response, 403, None).await;

    for open in ["/health", "/ready", "/metrics"] {
        let response = anonymous.get(format!("{}{open}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{open} stays open");
    }
    assert_eq!(
        committed_records(&app.isolation, &app.isolation.topics.commands)
            .await
            .len(),
        0,
        "nothing unauthorized reached Kafka"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_another_body_is_refused_and_writes_nothing_new() {
    let app = spawn_app().await;
    let body = json!({"name": "John Doe"});
    let first = app.place(&body, Some("checkout-7")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let events_before = app.isolation.records_written(&app.isolation.topics.events);

    let other = app.place(&json!({"name": "Jane Doe"}), Some("checkout-7")).await;
    let problem = assert_problem(other, 422, Some("Idempotency-Key")).await;
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_eq!(
        app.isolation.records_written(&app.isolation.topics.events),
        events_before,
        "nothing new on the events topic"
    );

    let retry = app.place(&body, Some("checkout-7")).await;
    assert_eq!(retry.status(), 201, "the first request still gets its answer");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_command_retried_answers_the_same_rejection() {
    let app = spawn_app().await;
    let placed = app.place(&json!({"name": "John Doe"}), None).await;
    let order_id = placed.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deliver = format!("/api/v1/orders/{order_id}/deliver");
    let first = assert_problem(app.post(&deliver, &json!({}), Some("deliver-1")).await, 409, None).await;
    assert_eq!(first["type"], "/problems/illegal-transition");
    assert_eq!(first["current_status"], "pending");

    // Deciding again would now deliver the order; the retry answers what the first try got.
    for (step, body) in [
        ("confirm", json!({})),
        ("start-processing", json!({})),
        (
            "ship",
            json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        ),
    ] {
        let response = app
            .post(&format!("/api/v1/orders/{order_id}/{step}"), &body, None)
            .await;
        assert_eq!(response.status(), 200, "{step}");
    }
    let retry = assert_problem(app.post(&deliver, &json!({}), Some("deliver-1")).await, 409, None).await;
    assert_eq!(retry, first);
    assert_eq!(
        app.post(&deliver, &json!({}), Some("deliver-2")).await.status(),
        200,
        "a new key is a new command"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_from_two_callers_places_two_orders() {
    let app = spawn_app().await;
    let token = service_kit::auth::mint_hs256(
        service_kit::testing::TEST_JWT_SECRET,
        "another-client",
        &service_kit::auth::ALL_SCOPES,
        Duration::from_secs(600),
        None,
        None,
    )
    .unwrap();
    let body = json!({"name": "John Doe"});
    let mine: Value = app.place(&body, Some("checkout-1")).await.json().await.unwrap();
    let theirs = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .header("authorization", format!("Bearer {token}"))
        .header("Idempotency-Key", "checkout-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 201);
    let theirs: Value = theirs.json().await.unwrap();
    assert_ne!(mine["order_id"], theirs["order_id"]);
    assert_eq!(
        committed_records(&app.isolation, &app.isolation.topics.events)
            .await
            .len(),
        2
    );
}
