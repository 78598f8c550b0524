//! `GET /api/v1/orders/{id}` after a write, by consistency token in the header.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_stack};

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_readable_right_after_it_is_placed() {
    let stack = spawn_stack().await;
    let placed = stack.place(json!({"name": "John Doe", "note": "First order"})).await;
    let order_id = placed["order_id"].as_str().unwrap();
    let response = stack
        .client
        .get(format!("{}/api/v1/orders/{order_id}", stack.queries))
        .header("X-Consistency-Token", placed["consistency_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let order: serde_json::Value = response.json().await.unwrap();
    assert_eq!(order["order_id"], order_id);
    assert_eq!(order["name"], "John Doe");
    assert_eq!(order["note"], "First order");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["version"], 1);

    let (status, body, headers) = stack.get(&format!("/api/v1/orders/{}", Uuid::new_v4())).await;
    assert_problem(status, &body, &headers, 404);
}
