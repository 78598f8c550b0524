//! The seed scenario and the `track_user` queries.

use std::time::Duration;

use serde_json::json;
use service_kit::ConsistencyToken;

use crate::helpers::{assert_problem, spawn_stack, spawn_stack_with_wait};

#[tokio::test(flavor = "multi_thread")]
async fn two_orders_for_john_doe_count_two_and_keep_the_first_time() {
    let stack = spawn_stack().await;
    let first = stack.place(json!({"name": "John Doe", "note": "First order"})).await;
    let token = first["consistency_token"].as_str().unwrap();
    let (status, user, _) = stack
        .get(&format!("/api/v1/track-users/John%20Doe?consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["counter"], 1);
    assert_eq!(user["name"], "John Doe");
    let first_created_at = user["created_at"].clone();
    let (_, order, _) = stack
        .get(&format!(
            "/api/v1/orders/{}?consistency_token={token}",
            first["order_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        first_created_at, order["placed_at"],
        "created_at is the first order's time"
    );

    let second = stack
        .place(json!({"name": "  John Doe ", "note": "Second order"}))
        .await;
    let token = second["consistency_token"].as_str().unwrap();
    let (status, user_after, _) = stack
        .get(&format!("/api/v1/track-users/John%20Doe?consistency_token={token}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(user_after["counter"], 2);
    assert_eq!(user_after["created_at"], first_created_at);
    assert_eq!(user_after["id"], user["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn track_users_page_by_name_with_a_stable_cursor() {
    let stack = spawn_stack().await;
    let names = ["Dora", "alice", "Bob", "Carol", "Eve"];
    let mut token = ConsistencyToken::default();
    for name in names {
        let placed = stack.place(json!({ "name": name })).await;
        token = token.merge(&ConsistencyToken::decode(placed["consistency_token"].as_str().unwrap()).unwrap());
    }
    let token = token.encode();
    let mut listed = Vec::new();
    let mut path = format!("/api/v1/track-users?limit=2&consistency_token={token}");
    let mut pages = 0;
    loop {
        let (status, page, _) = stack.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            listed.push(item["name"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/v1/track-users?limit=2&after={after}&consistency_token={token}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(pages, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_get_problems() {
    // Waits long enough that a refused token was refused, not waited out.
    let stack = spawn_stack_with_wait(Duration::from_secs(60)).await;
    let (status, body, headers) = stack.get("/api/v1/track-users/Nobody").await;
    assert_problem(status, &body, &headers, 404);

    let (status, body, headers) = stack.get("/api/v1/track-users/Nobody?consistency_token=garbage").await;
    assert_problem(status, &body, &headers, 400);
    assert_eq!(body["field"], "consistency_token");

    let (status, body, headers) = stack.get("/api/v1/track-users?limit=0").await;
    assert_problem(status, &body, &headers, 400);
    assert_eq!(body["field"], "limit");

    let (status, body, headers) = stack.get("/api/v1/orders/not-a-uuid").await;
    assert_problem(status, &body, &headers, 400);
    assert_eq!(body["field"], "order_id");

    // Tokens no write of this log handed out: no wait could pass them, so they are refused
    // rather than waited for and retried forever.
    for (partition, offset, named) in [
        (0, 1_000_000_000, "offset 1000000000 of partition 0"),
        (9_999, 0, "partition 9999"),
    ] {
        let unreachable = service_kit::ConsistencyToken::at(partition, offset).encode();
        let (status, body, headers) = stack
            .get(&format!("/api/v1/track-users/Nobody?consistency_token={unreachable}"))
            .await;
        assert_problem(status, &body, &headers, 400);
        assert_eq!(body["field"], "consistency_token");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(named) && detail.contains("not a token of this log"),
            "{body}"
        );
    }
}
