//! The tutorial's order flow over HTTP: items and totals, payment through a purchase, every
//! transition, the decline path, cancel after payment with its refund, illegal transitions and
//! stale `If-Match`.

use std::time::Duration;

use serde_json::{json, Value};
use service_kit::testing::{bearer_user, wait_until};
use uuid::Uuid;

use crate::helpers::Stack;
use crate::helpers::{assert_problem, spawn_stack, status_and_body, strings};

fn order_with_items(user_id: Uuid) -> Value {
    json!({
        "name": "John Doe",
        "note": "tutorial",
        "channel": "mobile",
        "user_id": user_id,
        "currency": "USD",
        "items": [
            {"sku": "MUG-1", "name": "Blue mug", "quantity": 2, "unit_price": 12.34},
            {"sku": "TEA-7", "name": "Green tea", "quantity": 1, "unit_price": 5.00}
        ]
    })
}

/// A purchase by the order's owner `user_id`: only the owner's purchase pays an order.
fn purchase_for(order_id: &str, user_id: Uuid, amount: Value, card: &str) -> Value {
    json!({
        "user_id": user_id,
        "username": "first_user",
        "amount": amount,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_holder_name": "John Doe",
        "card_number": card,
        "card_expiry": "12/30",
        "card_cvc": "123",
        "transaction_date": chrono::Utc::now().to_rfc3339(),
        "order_id": order_id,
    })
}

/// Sends a transition; returns status and body.
async fn transition(stack: &Stack, order_id: &str, verb: &str, body: Value, if_match: Option<&str>) -> (u16, Value) {
    let mut request = stack.command(&format!("/api/v1/orders/{order_id}/{verb}"), &body);
    if let Some(version) = if_match {
        request = request.header("If-Match", version);
    }
    status_and_body(request).await
}

/// The order as the read side holds it once `token` is reflected.
async fn order_at(stack: &Stack, order_id: &str, token: &str) -> Value {
    let (status, order, _) = stack
        .get(&format!("/api/v1/orders/{order_id}?consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{order}");
    order
}

/// Waits until the order's payment status is `payment_status`.
async fn payment_becomes(stack: &Stack, order_id: &str, payment_status: &str) -> Value {
    stack
        .get_when(&format!("/api/v1/orders/{order_id}"), "payment_status", payment_status)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_priced_paid_confirmed_processed_shipped_and_delivered() {
    let stack = spawn_stack().await;
    let user_id = Uuid::new_v4();
    let placed = stack.post("/api/v1/orders", order_with_items(user_id), 201).await;
    assert_eq!(
        placed["totals"],
        json!({"currency": "USD", "subtotal": "29.68", "tax": "2.37", "shipping": "9.99", "total": "42.04"})
    );
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    let order = order_at(&stack, &order_id, placed["consistency_token"].as_str().unwrap()).await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "pending");
    assert_eq!(order["channel"], "mobile");
    assert_eq!(order["item_count"], 3);
    assert_eq!(order["totals"]["total"]["minor"], 4204);

    stack
        .post(
            "/api/v1/purchases",
            purchase_for(&order_id, user_id, json!(42.04), "4242424242424242"),
            202,
        )
        .await;
    let paid = payment_becomes(&stack, &order_id, "paid").await;
    let mut version = paid["version"].as_i64().unwrap();
    let mut last_token = String::new();

    for (verb, body, status) in [
        ("confirm", json!({}), "confirmed"),
        ("start-processing", json!({}), "processing"),
        (
            "ship",
            json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
            "shipped",
        ),
        ("deliver", json!({}), "delivered"),
    ] {
        let (code, answer) = transition(&stack, &order_id, verb, body, Some(&format!("\"{version}\""))).await;
        assert_eq!(code, 200, "{verb}: {answer}");
        last_token = answer["consistency_token"].as_str().unwrap().to_owned();
        let order = order_at(&stack, &order_id, &last_token).await;
        assert_eq!(order["status"], status);
        assert_eq!(order["payment_status"], "paid");
        version = order["version"].as_i64().unwrap();
    }
    let (_, order, _) = stack.get(&format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(order["carrier"], "UPS");
    for reached in [
        "confirmed_at",
        "processing_started_at",
        "shipped_at",
        "delivered_at",
        "paid_at",
    ] {
        assert!(order["timestamps"][reached].is_string(), "{reached} in {order}");
    }
    let (_, history, _) = stack
        .get(&format!(
            "/api/v1/orders/{order_id}/history?consistency_token={last_token}"
        ))
        .await;
    assert_eq!(
        strings(&history, "events", "type"),
        [
            "orderstream.order.placed.v3",
            "orderstream.order.paid.v1",
            "orderstream.order.confirmed.v1",
            "orderstream.order.processing-started.v1",
            "orderstream.order.shipped.v1",
            "orderstream.order.delivered.v1"
        ]
    );
    let (_, listed, _) = stack
        .get(&format!(
            "/api/v1/orders?user_id={user_id}&status=delivered&payment_status=paid&consistency_token={last_token}"
        ))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_or_short_payment_fails_the_orders_payment() {
    let stack = spawn_stack().await;
    let owner = Uuid::new_v4();
    for (card, amount, reason) in [
        ("4000000000000002", json!(42.04), "card_declined"),
        ("4242424242424242", json!(40.00), "amount_mismatch"),
    ] {
        let placed = stack.post("/api/v1/orders", order_with_items(owner), 201).await;
        let order_id = placed["order_id"].as_str().unwrap();
        stack
            .post("/api/v1/purchases", purchase_for(order_id, owner, amount, card), 202)
            .await;
        let order = payment_becomes(&stack, order_id, "failed").await;
        assert_eq!(order["payment_failure_reason"], reason, "{card}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_the_order_cannot_keep_is_refunded_whole_and_the_order_says_why() {
    let stack = spawn_stack().await;
    let owner = Uuid::new_v4();
    // A short payment, and a full one for an order cancelled before it arrived.
    let short = stack.post("/api/v1/orders", order_with_items(owner), 201).await;
    let cancelled = stack.post("/api/v1/orders", order_with_items(owner), 201).await;
    let cancelled_id = cancelled["order_id"].as_str().unwrap();
    let (code, answer) = transition(
        &stack,
        cancelled_id,
        "cancel",
        json!({"reason": "changed my mind"}),
        None,
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    for (order, amount, reason, paid) in [
        (&short, json!(40.00), "amount_mismatch", "40.00"),
        (&cancelled, json!(42.04), "order_cancelled", "42.04"),
    ] {
        let order_id = order["order_id"].as_str().unwrap();
        let purchase = stack
            .post(
                "/api/v1/purchases",
                purchase_for(order_id, owner, amount, "4242424242424242"),
                202,
            )
            .await;
        let order = payment_becomes(&stack, order_id, "failed").await;
        assert_eq!(order["payment_failure_reason"], reason, "{order}");
        let purchase_id = purchase["purchase_id"].as_str().unwrap();
        let purchase = stack
            .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "refunded")
            .await;
        assert_eq!(purchase["refunded"]["value"], paid, "all of it goes back: {purchase}");
        assert_eq!(purchase["amount"]["value"], paid);
        let failed = wait_until("the failed payment in the history", Duration::from_secs(30), || async {
            let (_, history, _) = stack.get(&format!("/api/v1/orders/{order_id}/history")).await;
            history["events"]
                .as_array()?
                .iter()
                .find(|e| e["type"] == "orderstream.order.payment-failed.v1")
                .cloned()
        })
        .await;
        assert_eq!(failed["data"]["reason"], reason);
        assert_eq!(failed["data"]["amount"]["minor"], order_minor(paid));
    }
    let (_, order, _) = stack.get(&format!("/api/v1/orders/{cancelled_id}")).await;
    assert_eq!(order["status"], "cancelled");
}

/// Minor units of a USD amount written as a decimal string.
fn order_minor(value: &str) -> i64 {
    value.replace('.', "").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_paid_order_refunds_its_purchase() {
    let stack = spawn_stack().await;
    let owner = Uuid::new_v4();
    let placed = stack.post("/api/v1/orders", order_with_items(owner), 201).await;
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    let purchase = stack
        .post(
            "/api/v1/purchases",
            purchase_for(&order_id, owner, json!(42.04), "4242424242424242"),
            202,
        )
        .await;
    payment_becomes(&stack, &order_id, "paid").await;
    let (code, _) = transition(&stack, &order_id, "confirm", json!({}), None).await;
    assert_eq!(code, 200);
    let (code, answer) = transition(&stack, &order_id, "cancel", json!({"reason": "changed my mind"}), None).await;
    assert_eq!(code, 200, "{answer}");
    let order = payment_becomes(&stack, &order_id, "refunded").await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancel_reason"], "changed my mind");
    let purchase_id = purchase["purchase_id"].as_str().unwrap();
    let purchase = stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "refunded")
        .await;
    assert_eq!(purchase["refunded"]["value"], "42.04");
}

#[tokio::test(flavor = "multi_thread")]
async fn illegal_transitions_and_stale_versions_are_refused_and_write_nothing() {
    let stack = spawn_stack().await;
    let placed = stack.post("/api/v1/orders", json!({"name": "Jane"}), 201).await;
    let order_id = placed["order_id"].as_str().unwrap().to_owned();

    for (verb, body) in [
        ("start-processing", json!({})),
        ("ship", json!({"carrier": "UPS", "tracking_number": "1Z"})),
        ("deliver", json!({})),
    ] {
        let (code, problem) = transition(&stack, &order_id, verb, body, None).await;
        assert_eq!(code, 409, "{verb}: {problem}");
        assert_eq!(problem["type"], "/problems/illegal-transition");
        assert_eq!(problem["current_status"], "pending");
        assert_eq!(problem["allowed"], json!(["confirmed", "cancelled"]));
    }
    let (code, problem) = transition(&stack, &order_id, "confirm", json!({}), Some("\"7\"")).await;
    assert_eq!(code, 412, "{problem}");
    assert_eq!(problem["current_version"], 1);
    let (code, problem) = transition(&stack, &order_id, "confirm", json!({}), Some("soon")).await;
    assert_eq!(code, 400, "{problem}");
    let (code, problem) = transition(&stack, &order_id, "ship", json!({"carrier": " "}), None).await;
    assert_eq!(code, 422, "{problem}");
    assert_eq!(problem["field"], "carrier");

    let (code, answer) = transition(&stack, &order_id, "confirm", json!({}), Some("\"1\"")).await;
    assert_eq!(code, 200, "{answer}");
    let (code, cancelled) = transition(&stack, &order_id, "cancel", json!({"reason": "no longer needed"}), None).await;
    assert_eq!(code, 200);
    let token = cancelled["consistency_token"].as_str().unwrap().to_owned();
    let (code, problem) = transition(&stack, &order_id, "confirm", json!({}), None).await;
    assert_eq!(code, 409);
    assert_eq!(problem["current_status"], "cancelled");
    assert_eq!(problem["allowed"], json!([]));

    let (status, history, _) = stack
        .get(&format!("/api/v1/orders/{order_id}/history?consistency_token={token}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        history["events"].as_array().unwrap().len(),
        3,
        "only placed, confirmed, cancelled: {history}"
    );
    let (status, body, headers) = stack.get(&format!("/api/v1/orders/{}/history", Uuid::new_v4())).await;
    assert_problem(status, &body, &headers, 404);
    let (status, body, headers) = stack.get("/api/v1/orders?status=lost").await;
    assert_problem(status, &body, &headers, 400);
}

/// `POST` on the command API as `authorization`; status and body.
async fn post_as(stack: &Stack, authorization: &str, path: &str, body: Value) -> (u16, Value) {
    status_and_body(stack.command(path, &body).header("authorization", authorization)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_purchase_does_not_pay_an_order_and_the_owners_does() {
    let stack = spawn_stack().await;
    let (alice_id, bob_id) = (Uuid::new_v4(), Uuid::new_v4());
    let (alice, bob) = (bearer_user(alice_id), bearer_user(bob_id));
    let (status, placed) = post_as(&stack, &alice, "/api/v1/orders", order_with_items(alice_id)).await;
    assert_eq!(status, 201, "{placed}");
    let order_id = placed["order_id"].as_str().unwrap().to_owned();

    // Bob buys with Alice's order id and the right amount: his card is charged for himself…
    let mut bobs_purchase = purchase_for(&order_id, bob_id, json!(42.04), "4242424242424242");
    bobs_purchase.as_object_mut().unwrap().remove("user_id");
    let (status, accepted) = post_as(&stack, &bob, "/api/v1/purchases", bobs_purchase).await;
    assert_eq!(status, 202, "{accepted}");
    let bobs_id = accepted["purchase_id"].as_str().unwrap().to_owned();
    let token = accepted["consistency_token"].as_str().unwrap().to_owned();
    let bought = stack
        .get_when(
            &format!("/api/v1/purchases/{bobs_id}?consistency_token={token}"),
            "status",
            "authorized",
        )
        .await;
    assert_eq!(bought["user_id"], json!(bob_id));
    // …but Alice's order is not paid by it.
    let order = order_at(&stack, &order_id, placed["consistency_token"].as_str().unwrap()).await;
    assert_eq!(order["payment_status"], "pending", "{order}");

    // Alice pays with her own purchase.
    let (status, accepted) = post_as(
        &stack,
        &alice,
        "/api/v1/purchases",
        purchase_for(&order_id, alice_id, json!(42.04), "4242424242424242"),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let alices_id = accepted["purchase_id"].as_str().unwrap().to_owned();
    payment_becomes(&stack, &order_id, "paid").await;
    // Paid by her purchase only: Bob's left no payment, nor a failed one, on her order.
    let history = wait_until(
        "the payment in the order's history",
        Duration::from_secs(30),
        || async {
            let (code, history, _) = stack.get(&format!("/api/v1/orders/{order_id}/history")).await;
            let paid = code == 200
                && history["events"]
                    .as_array()
                    .is_some_and(|events| events.iter().any(|e| e["type"] == "orderstream.order.paid.v1"));
            paid.then_some(history)
        },
    )
    .await;
    let payments: Vec<(&str, &str)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("orderstream.order.pa"))
        .map(|e| (e["type"].as_str().unwrap(), e["data"]["purchase_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        payments,
        [("orderstream.order.paid.v1", alices_id.as_str())],
        "{history}"
    );
}
