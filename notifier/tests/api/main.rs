//! The notifier against the real broker and database: webhooks registered through its API,
//! events written to the events topic as the decider writes them, and real HTTP receivers.

mod helpers;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use service_kit::testing::{assert_no_card_data, wait_until};
use tokio::net::TcpListener;
use uuid::Uuid;

use helpers::{delivered_event, placed, placed_event, requested_event, Answer, Receiver, TestApp, DEADLINE};

fn status(delivery: &Value) -> &str {
    delivery["status"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_delivery_arrives_signed_with_the_event_and_without_card_data() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let (webhook_id, secret) = app
        .webhook(user, &receiver.url, &["order.placed", "purchase.requested"])
        .await;

    let order = placed(user);
    let purchase_id = Uuid::new_v4();
    app.publish([
        domain::Event::Order(domain::order::Event::OrderPlaced(order.clone())),
        requested_event(user, purchase_id),
    ])
    .await;

    let received = receiver.wait_for(2).await;
    assert_eq!(received.len(), 2, "each once");
    for message in &received {
        assert!(message.verifies(&secret), "the signature verifies: {message:?}");
        assert!(message.id.starts_with("msg_"));
        assert_no_card_data(&message.body, "in a webhook body");
        assert!(
            !message.body.contains("tok_secret_1"),
            "no payment token: {}",
            message.body
        );
        assert!(
            !message.body.contains("4242"),
            "not even the last digits: {}",
            message.body
        );
    }
    let bodies: Vec<Value> = received.iter().map(|m| m.json()).collect();
    let placed_body = bodies
        .iter()
        .find(|b| b["type"] == "order.placed")
        .expect("order.placed");
    assert_eq!(placed_body["data"]["order_id"], json!(order.order_id));
    assert!(placed_body["timestamp"].is_string());
    let requested = bodies
        .iter()
        .find(|b| b["type"] == "purchase.requested")
        .expect("purchase.requested");
    assert_eq!(requested["data"]["purchase_id"], json!(purchase_id));
    assert_eq!(
        requested["data"]["amount"],
        json!({"amount": "100.50", "currency": "USD"})
    );

    let deliveries = app
        .wait_for_deliveries(user, webhook_id, 2, "both recorded delivered", |d| {
            status(d) == "delivered"
        })
        .await;
    for delivery in deliveries {
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["last_http_status"], 200);
    }
    let (code, webhook) = app
        .call(Method::GET, user, &format!("/api/v1/webhooks/{webhook_id}"))
        .await;
    assert_eq!(code, 200);
    assert!(
        webhook.get("secret").is_none(),
        "the secret is shown only at creation: {webhook}"
    );
}

#[tokio::test]
async fn a_user_and_password_in_the_url_arrive_as_basic_authentication() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let url = receiver.url.replacen("http://", "http://hook:s3cret@", 1);
    app.webhook(user, &url, &["order.placed"]).await;

    app.publish([placed_event(user)]).await;

    let received = receiver.wait_for(1).await;
    // base64("hook:s3cret")
    assert_eq!(received[0].authorization, "Basic aG9vazpzM2NyZXQ=");
}

#[tokio::test]
async fn a_failed_attempt_is_retried_under_the_same_message_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::FirstThen(500)).await;
    let user = Uuid::new_v4();
    let (webhook_id, secret) = app.webhook(user, &receiver.url, &["order.placed"]).await;

    app.publish([placed_event(user)]).await;

    let deliveries = app
        .wait_for_deliveries(user, webhook_id, 1, "the retry delivered", |d| status(d) == "delivered")
        .await;
    assert_eq!(deliveries[0]["attempts"], 2);
    assert_eq!(deliveries[0]["last_http_status"], 200);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "a 500, then a 200");
    assert_eq!(received[0].id, received[1].id, "the same webhook-id on the retry");
    assert!(received.iter().all(|m| m.verifies(&secret)));
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_everything_afterwards() {
    let app = TestApp::spawn().await;
    // A port with nothing listening: connections are refused until the receiver starts on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let user = Uuid::new_v4();
    let (webhook_id, _) = app.webhook(user, &url, &["order.placed", "order.delivered"]).await;

    let orders: Vec<_> = (0..5).map(|_| placed(user)).collect();
    app.publish(orders.iter().map(|o| placed_event_of(o.clone()))).await;
    app.publish(orders.iter().map(|o| delivered_event(o.order_id))).await;

    // Down long enough for every delivery to fail a few times.
    let failing = app
        .wait_for_deliveries(user, webhook_id, 10, "every delivery to fail three times", |d| {
            status(d) == "pending" && d["attempts"].as_i64() >= Some(3)
        })
        .await;
    assert!(failing
        .iter()
        .all(|d| d["last_error"].is_string() && d["next_attempt_at"].is_string()));

    let receiver = Receiver::start_on(
        TcpListener::bind(("127.0.0.1", port)).await.expect("the port again"),
        Answer::Accept,
    );
    receiver.wait_for(10).await;
    app.wait_for_deliveries(user, webhook_id, 10, "all delivered once up", |d| {
        status(d) == "delivered"
    })
    .await;
}

fn placed_event_of(order: domain::order::OrderPlaced) -> domain::Event {
    domain::Event::Order(domain::order::Event::OrderPlaced(order))
}

#[tokio::test]
async fn a_client_error_fails_at_once_and_a_slow_receiver_holds_back_only_its_own() {
    let app = TestApp::spawn().await;
    let refusing = Receiver::start(Answer::Always(400)).await;
    let slow = Receiver::start(Answer::Hang).await;
    let healthy = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let (refusing_id, _) = app.webhook(user, &refusing.url, &["order.placed"]).await;
    let (slow_id, _) = app.webhook(user, &slow.url, &["order.placed"]).await;
    let (healthy_id, _) = app.webhook(user, &healthy.url, &["order.placed"]).await;

    app.publish((0..20).map(|_| placed_event(user))).await;

    app.wait_for_deliveries(user, healthy_id, 20, "the healthy webhook served", |d| {
        status(d) == "delivered"
    })
    .await;
    let slow_deliveries = app.deliveries(user, slow_id).await;
    assert!(
        slow_deliveries.iter().all(|d| status(d) == "pending"),
        "the slow receiver's deliveries wait"
    );
    let refused = app
        .wait_for_deliveries(user, refusing_id, 20, "the refused ones failed", |d| {
            status(d) == "failed"
        })
        .await;
    assert!(refused
        .iter()
        .all(|d| d["attempts"] == 1 && d["last_http_status"] == 400));
    assert_eq!(refusing.received().len(), 20, "no retry after a 400");
}

#[tokio::test]
async fn webhooks_and_their_events_are_their_owners_only() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_receiver = Receiver::start(Answer::Accept).await;
    let bob_receiver = Receiver::start(Answer::Accept).await;
    let events = ["order.placed", "order.delivered"];
    let (alice_hook, _) = app.webhook(alice, &alice_receiver.url, &events).await;
    let (bob_hook, _) = app.webhook(bob, &bob_receiver.url, &events).await;

    for path in [
        format!("/api/v1/webhooks/{alice_hook}"),
        format!("/api/v1/webhooks/{alice_hook}/deliveries"),
    ] {
        let (code, body) = app.call(Method::GET, bob, &path).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert_eq!(body["type"], "/problems/webhook-not-found");
    }
    let (code, _) = app
        .call(Method::DELETE, bob, &format!("/api/v1/webhooks/{alice_hook}"))
        .await;
    assert_eq!(code, 404, "bob cannot delete alice's webhook");

    let (alice_order, bob_order) = (placed(alice), placed(bob));
    app.publish([placed_event_of(bob_order.clone()), placed_event_of(alice_order.clone())])
        .await;
    // The delivery names no user: the owner recorded from the order placed decides.
    app.publish([
        delivered_event(bob_order.order_id),
        delivered_event(alice_order.order_id),
    ])
    .await;

    bob_receiver.wait_for(2).await;
    let alice_got = app
        .wait_for_deliveries(alice, alice_hook, 2, "alice's two delivered", |d| {
            status(d) == "delivered"
        })
        .await;
    assert!(alice_got.iter().all(|d| d["status"] == "delivered"));
    for message in alice_receiver.wait_for(2).await {
        assert_eq!(
            message.json()["data"]["order_id"],
            json!(alice_order.order_id),
            "{}",
            message.body
        );
    }
    for message in bob_receiver.received() {
        assert_eq!(
            message.json()["data"]["order_id"],
            json!(bob_order.order_id),
            "{}",
            message.body
        );
    }
    assert_eq!(app.deliveries(bob, bob_hook).await.len(), 2);

    let (code, _) = app
        .call(Method::DELETE, alice, &format!("/api/v1/webhooks/{alice_hook}"))
        .await;
    assert_eq!(code, 204);
    let (code, _) = app
        .call(Method::GET, alice, &format!("/api/v1/webhooks/{alice_hook}"))
        .await;
    assert_eq!(code, 404, "gone once deleted");
}

/// The ids of `user`'s webhooks as `GET /api/v1/webhooks` lists them.
async fn listed(app: &TestApp, user: Uuid) -> Vec<String> {
    let (code, body) = app.call(Method::GET, user, "/api/v1/webhooks").await;
    assert_eq!(code, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert!(
        items.iter().all(|item| item.get("secret").is_none()),
        "no secret: {body}"
    );
    items
        .iter()
        .map(|item| item["webhook_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_user_lists_its_webhooks_and_may_have_only_so_many_even_registering_at_once() {
    let app = TestApp::spawn_with(&[("WEBHOOKS_PER_USER", "3")]).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["order.placed"]});

    // Ten at once: the owner's registrations take turns, so the limit holds.
    let answers = futures::future::join_all((0..10).map(|_| app.register(alice, &hook))).await;
    let created = answers.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(created, 3, "{answers:?}");
    for (code, problem) in answers.iter().filter(|(code, _)| *code != 201) {
        assert_eq!(*code, 409, "{problem}");
        assert_eq!(problem["type"], "/problems/too-many-webhooks");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains("at most 3"),
            "{problem}"
        );
    }
    let alices = listed(&app, alice).await;
    assert_eq!(alices.len(), 3, "the refused ones left nothing: {alices:?}");

    // Another user's webhooks count apart and are not listed to the first.
    let (bobs, _) = app.webhook(bob, "http://127.0.0.1:9/bob", &["order.placed"]).await;
    assert_eq!(listed(&app, bob).await, [bobs.to_string()]);
    assert!(!listed(&app, alice).await.contains(&bobs.to_string()));

    // Deleting one makes room for another.
    let (code, _) = app
        .call(Method::DELETE, alice, &format!("/api/v1/webhooks/{}", alices[0]))
        .await;
    assert_eq!(code, 204);
    let (code, body) = app.register(alice, &hook).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(listed(&app, alice).await.len(), 3);
}

#[tokio::test]
async fn private_urls_and_control_characters_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(&[("WEBHOOKS_ALLOW_PRIVATE", "false")]).await;
    let user = Uuid::new_v4();
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/hook",
        "http://192.168.1.10/hook",
    ] {
        let (code, body) = app
            .register(user, &json!({"url": url, "events": ["order.placed"]}))
            .await;
        assert_eq!(code, 422, "{url}: {body}");
        assert_eq!(body["field"], "url", "{url}: {body}");
    }
    let (code, body) = app
        .register(
            user,
            &json!({"url": "https://example.com/hook", "events": ["order.placed"], "description": "shop\u{0}"}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["field"], "description");
    let (code, body) = app
        .register(
            user,
            &json!({"url": "https://example.com/hook", "events": ["order.placed"], "active": true}),
        )
        .await;
    assert_eq!((code, &body["field"]), (422, &json!("active")), "{body}");

    let pool = app.isolation.database.pool().expect("pool");
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhooks")
        .fetch_one(&pool)
        .await
        .expect("counted");
    assert_eq!(stored, 0, "nothing refused was stored");
}

#[tokio::test]
async fn two_replicas_deliver_every_event_exactly_once() {
    let app = TestApp::spawn().await;
    app.add_replica().await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let (webhook_id, _) = app.webhook(user, &receiver.url, &["order.placed"]).await;

    app.publish((0..60).map(|_| placed_event(user))).await;

    app.wait_for_deliveries(user, webhook_id, 60, "all recorded delivered", |d| {
        status(d) == "delivered"
    })
    .await;
    let received = receiver.received();
    let mut ids: Vec<&str> = received.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((ids.len(), received.len()), (60, 60), "every event once, none twice");
}

#[tokio::test]
async fn a_replica_killed_mid_delivery_leaves_every_event_delivered_and_recorded_once() {
    // Short leases on both, so what the killed replica had leased comes back to the survivor.
    const LEASE: (&str, &str) = ("WEBHOOK_LEASE", "5s");
    let app = TestApp::spawn_with(&[LEASE]).await;
    let receiver = Receiver::start(Answer::After(Duration::from_millis(20))).await;
    let user = Uuid::new_v4();
    let (webhook_id, _) = app.webhook(user, &receiver.url, &["order.placed"]).await;
    let killed = app.add_replica_process(&[(LEASE.0, LEASE.1.to_owned())]);

    app.publish((0..200).map(|_| placed_event(user))).await;
    receiver.wait_for(20).await;
    killed.kill();

    app.wait_for_deliveries(user, webhook_id, 200, "every event recorded delivered once", |d| {
        status(d) == "delivered"
    })
    .await;
    let mut ids: Vec<String> = receiver.received().into_iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every event arrived, a resent one under its first id");
}

#[tokio::test]
async fn records_no_code_of_ours_wrote_do_not_stop_deliveries() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let (webhook_id, _) = app.webhook(user, &receiver.url, &["order.placed"]).await;

    let id = Uuid::new_v4().to_string();
    let time = chrono::Utc::now().to_rfc3339();
    let envelope = |ce_type: &'static str| {
        [
            ("ce_specversion", "1.0"),
            ("ce_id", id.as_str()),
            ("ce_type", ce_type),
            ("ce_time", time.as_str()),
            ("ce_correlationid", id.as_str()),
        ]
    };
    app.publish_raw(&envelope("orderstream.order.placed.v3"), b"not json at all")
        .await;
    app.publish_raw(&envelope("com.example.teleported.v1"), br#"{"order_id": 1}"#)
        .await;
    app.publish_raw(&[], b"\x00\xff").await;
    app.publish([placed_event(user)]).await;

    receiver.wait_for(1).await;
    app.wait_for_deliveries(user, webhook_id, 1, "the good event delivered", |d| {
        status(d) == "delivered"
    })
    .await;
    wait_until("the bad records counted", DEADLINE, || async {
        let metrics = app.metrics().await;
        metrics
            .lines()
            .any(|line| line.starts_with("notifier_records_skipped_total") && line.ends_with(" 3"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_host_that_resolves_to_a_private_address_is_refused_at_delivery() {
    let app = TestApp::spawn_with(&[("WEBHOOKS_ALLOW_PRIVATE", "false")]).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    // As if the name had resolved to a public address at registration and to the loopback now:
    // the row is written directly, since the API refuses it today.
    let webhook_id = Uuid::new_v4();
    let pool = app.isolation.database.pool().expect("pool");
    sqlx::query("INSERT INTO webhooks (webhook_id, owner, url, events, secret) VALUES ($1, $2, $3, $4, $5)")
        .bind(webhook_id)
        .bind(user)
        .bind(receiver.url.replace("127.0.0.1", "localhost"))
        .bind(vec!["order.placed".to_owned()])
        .bind(notifier::signature::WebhookSecret::generate().as_bytes())
        .execute(&pool)
        .await
        .expect("stored");

    app.publish([placed_event(user)]).await;

    let failed = app
        .wait_for_deliveries(user, webhook_id, 1, "the delivery refused", |d| status(d) == "failed")
        .await;
    assert_eq!(failed[0]["attempts"], 1, "no retry: {}", failed[0]);
    let error = failed[0]["last_error"].as_str().expect("an error");
    assert!(
        error.contains("refused") && error.contains("`localhost` is an internal address"),
        "{error}"
    );
    assert!(receiver.received().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_proxy_in_the_environment_is_not_used_so_the_guard_sees_every_address() {
    // A proxy would resolve the webhook's host itself, out of the guard's sight; this one
    // records whatever comes to it.
    let proxy = Receiver::start(Answer::Accept).await;
    let proxy_url = proxy.url.trim_end_matches("/hook").to_owned();
    let settings = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"].map(|name| (name, proxy_url.clone()));
    let (app, _notifier) = TestApp::spawn_process(&settings).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let user = Uuid::new_v4();
    let (webhook_id, _) = app.webhook(user, &receiver.url, &["order.placed"]).await;

    app.publish([placed_event(user)]).await;

    receiver.wait_for(1).await;
    app.wait_for_deliveries(user, webhook_id, 1, "the event delivered", |d| status(d) == "delivered")
        .await;
    assert!(proxy.received().is_empty(), "nothing went through the proxy");
}
