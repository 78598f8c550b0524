//! Who may do what, on both APIs: a user places, reads and cancels only its own orders and
//! purchases (another user's are not found, exactly like missing ones); staff move, cancel,
//! refund and read everything. Every route is called with a user token and a staff token.

use std::time::Duration;

use serde_json::{json, Value};
use service_kit::testing::{bearer_staff, bearer_user, wait_until};
use uuid::Uuid;

use crate::helpers::{spawn_stack, status_and_body, strings, Stack};

/// One caller of the stack: its `Authorization` header on every request.
struct Caller<'a> {
    stack: &'a Stack,
    authorization: String,
}

impl<'a> Caller<'a> {
    fn user(stack: &'a Stack, user_id: Uuid) -> Self {
        Self {
            stack,
            authorization: bearer_user(user_id),
        }
    }

    fn staff(stack: &'a Stack) -> Self {
        Self {
            stack,
            authorization: bearer_staff(),
        }
    }

    /// `POST` on the command API with an optional `If-Match`; status and body.
    async fn post_if_match(&self, path: &str, body: Value, if_match: Option<&str>) -> (u16, Value) {
        let mut request = self
            .stack
            .command(path, &body)
            .header("authorization", &self.authorization);
        if let Some(version) = if_match {
            request = request.header("If-Match", version);
        }
        status_and_body(request).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_if_match(path, body, None).await
    }

    /// `GET` on the query API; status and body.
    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let request = self
            .stack
            .client
            .get(format!("{}{path_and_query}", self.stack.queries))
            .header("authorization", &self.authorization);
        status_and_body(request).await
    }
}

/// The cast of every test here: Alice and Bob, two users with their ids, and a staff member.
fn cast(stack: &Stack) -> ((Uuid, Caller<'_>), (Uuid, Caller<'_>), Caller<'_>) {
    let (alice_id, bob_id) = (Uuid::new_v4(), Uuid::new_v4());
    (
        (alice_id, Caller::user(stack, alice_id)),
        (bob_id, Caller::user(stack, bob_id)),
        Caller::staff(stack),
    )
}

fn seed_order() -> Value {
    json!({"name": "John Doe", "note": "First order"})
}

fn purchase(user_id: Option<Uuid>) -> Value {
    let mut body = json!({
        "username": "first_user",
        "amount": 100.50,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_holder_name": "John Doe",
        "card_number": "4111111111111111",
        "card_expiry": "12/30",
        "card_cvc": "123",
        "billing_address": "123 Elm Street, Springfield",
        "transaction_date": chrono::Utc::now().to_rfc3339(),
    });
    if let Some(user_id) = user_id {
        body["user_id"] = json!(user_id);
    }
    body
}

/// A 201 order: its id and consistency token.
async fn placed(caller: &Caller<'_>, body: Value) -> (String, String) {
    let (status, body) = caller.post("/api/v1/orders", body).await;
    assert_eq!(status, 201, "{body}");
    (
        body["order_id"].as_str().unwrap().to_owned(),
        body["consistency_token"].as_str().unwrap().to_owned(),
    )
}

/// The answer for something that is not there, or not the caller's: the same either way.
fn assert_not_found(status: u16, body: &Value, problem_type: &str) {
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], problem_type, "{body}");
}

/// The answer to a token without the scope a route needs.
fn assert_forbidden(status: u16, body: &Value, scope: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "/problems/forbidden", "{body}");
    assert!(body["scope"].as_str().unwrap().split(' ').any(|s| s == scope), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_see_and_cancel_only_their_own_orders_and_staff_run_every_order() {
    let stack = spawn_stack().await;
    let ((alice_id, alice), (bob_id, bob), staff) = cast(&stack);

    // The seed payload with a user token: the order belongs to the caller.
    let (alices, alice_token) = placed(&alice, seed_order()).await;
    let mut with_user = seed_order();
    with_user["user_id"] = json!(alice_id);
    let (alices_second, second_token) = placed(&alice, with_user).await;
    let (bobs, bob_token) = placed(&bob, seed_order()).await;
    // Staff read every order, once the read models have them.
    for (order, token) in [
        (&alices, &alice_token),
        (&alices_second, &second_token),
        (&bobs, &bob_token),
    ] {
        for path in [
            format!("/api/v1/orders/{order}"),
            format!("/api/v1/orders/{order}/history"),
        ] {
            let (status, body) = staff.get(&format!("{path}?consistency_token={token}")).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    // For another user: refused, naming the field, and only staff's scope would do.
    let mut for_bob = seed_order();
    for_bob["user_id"] = json!(bob_id);
    let (status, body) = alice.post("/api/v1/orders", for_bob).await;
    assert_forbidden(status, &body, "orders:manage");
    assert_eq!(body["field"], "user_id");
    // Staff move orders; they do not place them.
    let (status, body) = staff.post("/api/v1/orders", seed_order()).await;
    assert_forbidden(status, &body, "orders:write");

    // Reads: one's own order and its history; another user's are exactly like missing ones.
    let (status, order) = alice
        .get(&format!("/api/v1/orders/{alices}?consistency_token={alice_token}"))
        .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["user_id"], json!(alice_id));
    let (status, history) = alice
        .get(&format!(
            "/api/v1/orders/{alices}/history?consistency_token={alice_token}"
        ))
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["events"][0]["data"]["user_id"], json!(alice_id));
    let missing = Uuid::new_v4();
    for path in [
        format!("/api/v1/orders/{alices}"),
        format!("/api/v1/orders/{alices}/history"),
    ] {
        let (status, body) = bob.get(&path).await;
        assert_not_found(status, &body, "/problems/not-found");
        let (missing_status, missing_body) = bob.get(&path.replace(&alices, &missing.to_string())).await;
        assert_eq!((missing_status, &missing_body["title"]), (status, &body["title"]));
    }

    // Listings: a user sees only its own orders, even when filtering for another user.
    let (status, page) = alice.get("/api/v1/orders?limit=500").await;
    assert_eq!(status, 200, "{page}");
    let mut own = strings(&page, "items", "order_id");
    own.sort();
    let mut expected = vec![alices.as_str(), alices_second.as_str()];
    expected.sort();
    assert_eq!(own, expected);
    let (_, page) = alice.get(&format!("/api/v1/orders?user_id={bob_id}")).await;
    assert_eq!(strings(&page, "items", "order_id"), Vec::<&str>::new());
    let (_, page) = staff.get("/api/v1/orders?limit=500").await;
    let everyone = strings(&page, "items", "order_id");
    for order in [&alices, &alices_second, &bobs] {
        assert!(everyone.contains(&order.as_str()), "{order} not in {everyone:?}");
    }
    let (_, page) = staff.get(&format!("/api/v1/orders?user_id={bob_id}")).await;
    assert_eq!(strings(&page, "items", "order_id"), vec![bobs.as_str()]);
    // `track_user` counts across users: staff only.
    let (status, body) = alice.get("/api/v1/track-users/John%20Doe").await;
    assert_forbidden(status, &body, "read:all");
    // With the last order's token: `track_user` is a projection of its own and may lag the others.
    let (status, body) = staff
        .get(&format!("/api/v1/track-users/John%20Doe?consistency_token={bob_token}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = alice.get("/api/v1/track-users").await;
    assert_forbidden(status, &body, "read:all");
    let (status, _) = staff.get("/api/v1/track-users").await;
    assert_eq!(status, 200);

    // Cancel: another user's order is not found, even with a version that would be stale, and
    // nothing is written; one's own is cancelled.
    let reason = json!({"reason": "changed my mind"});
    let cancel = format!("/api/v1/orders/{alices}/cancel");
    for if_match in [None, Some("\"9\"")] {
        let (status, body) = bob.post_if_match(&cancel, reason.clone(), if_match).await;
        assert_not_found(status, &body, "/problems/order-not-found");
        assert!(!body.to_string().contains("another user"), "{body}");
    }
    let (status, missing_body) = bob
        .post(&format!("/api/v1/orders/{missing}/cancel"), reason.clone())
        .await;
    assert_not_found(status, &missing_body, "/problems/order-not-found");
    let (_, order) = staff.get(&format!("/api/v1/orders/{alices}")).await;
    assert_eq!((&order["status"], &order["version"]), (&json!("pending"), &json!(1)));

    // The lifecycle is staff's: a user's token lacks the scope, staff move any order.
    for verb in ["confirm", "start-processing", "deliver"] {
        let (status, body) = alice.post(&format!("/api/v1/orders/{alices}/{verb}"), json!({})).await;
        assert_forbidden(status, &body, "orders:manage");
    }
    let ship = json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    let (status, body) = alice.post(&format!("/api/v1/orders/{alices}/ship"), ship.clone()).await;
    assert_forbidden(status, &body, "orders:manage");
    for (verb, body) in [
        ("confirm", json!({})),
        ("start-processing", json!({})),
        ("ship", ship),
        ("deliver", json!({})),
    ] {
        let (status, answer) = staff.post(&format!("/api/v1/orders/{bobs}/{verb}"), body).await;
        assert_eq!(status, 200, "{verb}: {answer}");
    }
    let (status, _) = alice.post(&cancel, reason.clone()).await;
    assert_eq!(status, 200);
    let (status, answer) = staff
        .post(&format!("/api/v1/orders/{alices_second}/cancel"), reason)
        .await;
    assert_eq!(status, 200, "staff cancel any order: {answer}");
    let token = answer["consistency_token"].as_str().unwrap();
    let (_, order) = alice
        .get(&format!("/api/v1/orders/{alices_second}?consistency_token={token}"))
        .await;
    assert_eq!(order["status"], "cancelled");
    let (_, order) = bob.get(&format!("/api/v1/orders/{bobs}")).await;
    assert_eq!(order["status"], "delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_see_only_their_own_purchases_and_spend_and_only_staff_refund() {
    let stack = spawn_stack().await;
    let ((alice_id, alice), (bob_id, bob), staff) = cast(&stack);

    // Without `user_id` the purchase is the caller's; with its own id too; another's is refused.
    let (status, accepted) = alice.post("/api/v1/purchases", purchase(None)).await;
    assert_eq!(status, 202, "{accepted}");
    let purchase_id = accepted["purchase_id"].as_str().unwrap().to_owned();
    let (status, body) = alice.post("/api/v1/purchases", purchase(Some(alice_id))).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = alice.post("/api/v1/purchases", purchase(Some(bob_id))).await;
    assert_forbidden(status, &body, "purchases:refund");
    assert_eq!(body["field"], "user_id");
    let (status, body) = staff.post("/api/v1/purchases", purchase(Some(bob_id))).await;
    assert_forbidden(status, &body, "purchases:write");

    wait_until("alice's purchases authorized", Duration::from_secs(30), || async {
        let (status, page) = alice.get(&format!("/api/v1/users/{alice_id}/purchases")).await;
        let items = page["items"].as_array()?;
        (status == 200 && items.len() == 2 && items.iter().all(|p| p["status"] == "authorized")).then_some(())
    })
    .await;
    let (status, authorized) = alice.get(&format!("/api/v1/purchases/{purchase_id}")).await;
    assert_eq!(
        (status, &authorized["user_id"]),
        (200, &json!(alice_id)),
        "{authorized}"
    );

    // Another user's purchase, purchases and spend are not found; staff read them all.
    let (status, body) = bob.get(&format!("/api/v1/purchases/{purchase_id}")).await;
    assert_not_found(status, &body, "/problems/not-found");
    for path in [
        format!("/api/v1/users/{alice_id}/purchases"),
        format!("/api/v1/users/{alice_id}/spend"),
    ] {
        let (status, body) = bob.get(&path).await;
        assert_not_found(status, &body, "/problems/not-found");
        let (status, own) = alice.get(&path).await;
        assert_eq!(status, 200, "{own}");
        let (status, all) = staff.get(&path).await;
        assert_eq!((status, &all), (200, &own));
    }
    let (_, page) = alice.get(&format!("/api/v1/users/{alice_id}/purchases")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (status, page) = bob.get(&format!("/api/v1/users/{bob_id}/purchases")).await;
    assert_eq!(
        (status, page["items"].as_array().unwrap().len()),
        (200, 0),
        "nothing written for bob"
    );
    let (status, body) = staff.get(&format!("/api/v1/purchases/{purchase_id}")).await;
    assert_eq!(status, 200, "{body}");

    // Refunds are staff's.
    let refund = json!({"amount": 40.00, "reason": "damaged"});
    let path = format!("/api/v1/purchases/{purchase_id}/refunds");
    let (status, body) = alice.post(&path, refund.clone()).await;
    assert_forbidden(status, &body, "purchases:refund");
    let (status, body) = staff.post(&path, refund).await;
    assert_eq!(status, 202, "{body}");
    // Requested now, paid back by the gateway shortly after.
    wait_until("alice's refund to be paid back", Duration::from_secs(30), || async {
        let (_, spend) = alice.get(&format!("/api/v1/users/{alice_id}/spend")).await;
        (spend["currencies"][0]["refunded"]["value"] == "40.00").then_some(())
    })
    .await;
}
