//! Purchases end to end: request → reactor → authorized, visible in `purchases` and `user_spend`;
//! refunds; and card data absent from every read model.

use serde_json::{json, Value};
use service_kit::auth::{ORDERS_WRITE, READ, READ_ALL};
use service_kit::testing::{assert_no_card_data, bearer, example_purchase};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_stack, strings};

/// The purchase processor's example, with the card number spaced as people type it.
fn seed_purchase(user_id: Uuid) -> Value {
    let mut purchase = example_purchase(user_id);
    purchase["card_number"] = json!("4242 4242 4242 4242");
    purchase
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_purchase_is_authorized_and_counted_in_the_users_spend() {
    let stack = spawn_stack().await;
    let user_id = Uuid::new_v4();
    let accepted = stack.post("/api/v1/purchases", seed_purchase(user_id), 202).await;
    let purchase_id = accepted["purchase_id"].as_str().unwrap();
    let token = accepted["consistency_token"].as_str().unwrap();

    let (status, requested, _) = stack
        .get(&format!("/api/v1/purchases/{purchase_id}?consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{requested}");
    assert_eq!(
        requested["amount"],
        json!({"value": "100.50", "minor": 10050, "currency": "USD"})
    );
    assert_eq!(requested["card"]["last4"], "4242");
    assert_eq!(requested["card"]["brand"], "visa");
    assert_eq!(requested["username"], "first_user");

    let purchase = stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "authorized")
        .await;
    assert!(purchase["authorization_id"].as_str().is_some_and(|a| !a.is_empty()));
    let (_, page, _) = stack.get(&format!("/api/v1/users/{user_id}/purchases")).await;
    assert_eq!(strings(&page, "items", "purchase_id"), [purchase_id]);
    let (_, spend, _) = stack.get(&format!("/api/v1/users/{user_id}/spend")).await;
    let usd = &spend["currencies"][0];
    assert_eq!(usd["currency"], "USD");
    assert_eq!(usd["purchases"], 1);
    assert_eq!(usd["authorized"]["value"], "100.50");
    assert_eq!(usd["refunded"]["minor"], 0);

    let refund = stack
        .post(
            &format!("/api/v1/purchases/{purchase_id}/refunds"),
            json!({"amount": 40, "reason": "damaged"}),
            202,
        )
        .await;
    assert_eq!(refund["status"], "refund_requested");
    // The token covers the request: nothing is refunded until the gateway has paid it back.
    let token = refund["consistency_token"].as_str().unwrap();
    let (_, requested, _) = stack
        .get(&format!("/api/v1/purchases/{purchase_id}?consistency_token={token}"))
        .await;
    assert_eq!(requested["amount"]["minor"], 10050, "{requested}");
    let refunded = stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "refunded")
        .await;
    assert_eq!(refunded["refunded"]["value"], "40.00");
    let (_, spend, _) = stack.get(&format!("/api/v1/users/{user_id}/spend")).await;
    assert_eq!(spend["currencies"][0]["refunded"]["minor"], 4000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_purchase_reads_back_declined_with_its_reason() {
    let stack = spawn_stack().await;
    let mut purchase = seed_purchase(Uuid::new_v4());
    purchase["card_number"] = json!("4000000000009995");
    let accepted = stack.post("/api/v1/purchases", purchase, 202).await;
    let purchase_id = accepted["purchase_id"].as_str().unwrap();
    let declined = stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "declined")
        .await;
    assert_eq!(declined["decline_reason"], "insufficient_funds");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_purchases_page_newest_first() {
    let stack = spawn_stack().await;
    let user_id = Uuid::new_v4();
    let mut placed = Vec::new();
    let mut token = service_kit::ConsistencyToken::default();
    for _ in 0..5 {
        let accepted = stack.post("/api/v1/purchases", seed_purchase(user_id), 202).await;
        placed.push(accepted["purchase_id"].as_str().unwrap().to_owned());
        token = token
            .merge(&service_kit::ConsistencyToken::decode(accepted["consistency_token"].as_str().unwrap()).unwrap());
    }
    let token = token.encode();
    let mut listed = Vec::new();
    let mut path = format!("/api/v1/users/{user_id}/purchases?limit=2&consistency_token={token}");
    loop {
        let (status, page, _) = stack.get(&path).await;
        assert_eq!(status, 200, "{page}");
        listed.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["purchase_id"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/v1/users/{user_id}/purchases?limit=2&after={after}"),
            None => break,
        }
    }
    placed.reverse();
    assert_eq!(listed, placed, "newest first, each once");
    let (status, body, headers) = stack
        .get(&format!("/api/v1/users/{user_id}/purchases?after=garbage"))
        .await;
    assert_problem(status, &body, &headers, 400);
    assert_eq!(body["field"], "after");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_read_model_holds_a_card_number_or_cvc() {
    let stack = spawn_stack().await;
    let accepted = stack
        .post("/api/v1/purchases", seed_purchase(Uuid::new_v4()), 202)
        .await;
    let purchase_id = accepted["purchase_id"].as_str().unwrap();
    stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "authorized")
        .await;

    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
            .bind(&stack.isolation.database.database_schema)
            .fetch_all(&stack.pool)
            .await
            .unwrap();
    assert!(tables.contains(&"purchases".to_owned()) && tables.contains(&"user_spend".to_owned()));
    let mut rows = 0;
    for table in tables {
        let dump: Vec<String> = sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t"))
            .fetch_all(&stack.pool)
            .await
            .unwrap();
        for row in dump {
            assert_no_card_data(&row, &format!("in {table}"));
            rows += 1;
        }
    }
    assert!(rows >= 3, "scanned only {rows} rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_need_a_token_with_the_read_scope() {
    let stack = spawn_stack().await;
    let anonymous = reqwest::Client::new();
    let url = format!("{}/api/v1/track-users/Nobody", stack.queries);
    let response = anonymous.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    // `track_user` counts orders across users: staff only.
    for (scope, status, why) in [
        (ORDERS_WRITE, 403, "a writer may not read"),
        (READ, 403, "a user may not read across users"),
        (READ_ALL, 404, "authorized, and the name is unknown"),
    ] {
        let response = anonymous
            .get(&url)
            .header("authorization", bearer(&[scope]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{scope}: {why}");
    }
    let health = anonymous.get(format!("{}/health", stack.queries)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
