//! A user acts only for itself: orders and purchases for another user are refused before
//! anything reaches Kafka, and cancelling another user's order answers exactly like cancelling
//! a missing one.

use rdkafka::Message;
use serde_json::{json, Value};
use service_kit::auth::{user_id_of, USER_SCOPES};
use service_kit::testing::{bearer_as, bearer_staff};
use uuid::Uuid;

use crate::helpers::{assert_problem, committed_records, spawn_app, TestApp};
use crate::purchases::seed_purchase;

async fn post(app: &TestApp, authorization: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", app.address))
        .header("authorization", authorization)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_acts_only_for_itself_and_another_users_order_is_a_missing_one() {
    let app = spawn_app().await;
    let alice = bearer_as("alice@example.com", &USER_SCOPES);
    let bob = bearer_as("bob@example.com", &USER_SCOPES);
    let someone_else = Uuid::new_v4();

    // The seed payload: the order belongs to the caller, whose `sub` is not a UUID.
    let response = post(
        &app,
        &alice,
        "/api/v1/orders",
        &json!({"name": "John Doe", "note": "First order"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let order_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // For another user: 403 naming `user_id`, nothing sent.
    let order = json!({"name": "John Doe", "user_id": someone_else});
    let body = assert_problem(post(&app, &alice, "/api/v1/orders", &order).await, 403, Some("user_id")).await;
    assert_eq!(body["scope"], "orders:manage");
    let mut purchase = seed_purchase();
    purchase["user_id"] = json!(someone_else);
    let body = assert_problem(
        post(&app, &alice, "/api/v1/purchases", &purchase).await,
        403,
        Some("user_id"),
    )
    .await;
    assert_eq!(body["scope"], "purchases:refund");

    // Bob cancelling Alice's order learns what he would of a missing one, even with a stale
    // If-Match.
    let reason = json!({"reason": "changed my mind"});
    let foreign = assert_problem(
        post(&app, &bob, &format!("/api/v1/orders/{order_id}/cancel"), &reason).await,
        404,
        None,
    )
    .await;
    let missing_id = Uuid::new_v4().to_string();
    let missing = assert_problem(
        post(&app, &bob, &format!("/api/v1/orders/{missing_id}/cancel"), &reason).await,
        404,
        None,
    )
    .await;
    assert_eq!(
        foreign.to_string().replace(&order_id, "ID"),
        missing.to_string().replace(&missing_id, "ID")
    );
    assert_eq!(foreign["type"], "/problems/order-not-found");
    let stale = reqwest::Client::new()
        .post(format!("{}/api/v1/orders/{order_id}/cancel", app.address))
        .header("authorization", &bob)
        .header("If-Match", "\"7\"")
        .json(&reason)
        .send()
        .await
        .unwrap();
    assert_problem(stale, 404, None).await;
    // A user does not move orders through their lifecycle; staff cancel any order.
    let confirm = post(&app, &alice, &format!("/api/v1/orders/{order_id}/confirm"), &json!({})).await;
    assert_problem(confirm, 403, None).await;
    let cancelled = post(
        &app,
        &bearer_staff(),
        &format!("/api/v1/orders/{order_id}/cancel"),
        &reason,
    )
    .await;
    assert_eq!(cancelled.status(), 200);

    let events = committed_records(&app.isolation, &app.isolation.topics.events).await;
    let types: Vec<String> = events
        .iter()
        .map(|event| crate::helpers::header(event, "ce_type").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        types,
        ["orderstream.order.placed.v3", "orderstream.order.cancelled.v1"],
        "only the placing and staff's cancel wrote events"
    );
    let placed: Value = serde_json::from_slice(events[0].payload().unwrap()).unwrap();
    assert_eq!(placed["user_id"], json!(user_id_of("alice@example.com")));
    // Bob's cancels were decided (and refused) on the order's state: on the audit trail. The
    // refusals at the edge never reached Kafka.
    let commands = committed_records(&app.isolation, &app.isolation.topics.commands).await;
    assert_eq!(commands.len(), 5, "place, Bob's three cancels, staff's cancel");
}
