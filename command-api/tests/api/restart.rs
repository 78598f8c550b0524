//! A command-api killed and started again restores its decider from the log.

use std::path::Path;

use serde_json::{json, Value};
use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use uuid::Uuid;

use crate::helpers::{accepted_purchase, assert_problem, purchase_events, READY_WITHIN};

pub(crate) fn start(isolation: &Isolation, port: u16) -> ChildService {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    ChildService::spawn(Path::new(env!("CARGO_BIN_EXE_command-api")), &[], &env)
}

pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until("command-api to be ready", READY_WITHIN, || async {
        let response = client.get(format!("{base}/ready")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_answers_and_rejections_survive_the_command_api_being_killed_and_restarted() {
    let isolation = Isolation::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = crate::helpers::authorized_client();
    let place = |body: Value, key: Option<&'static str>| {
        let mut request = client.post(format!("{base}/api/v1/orders")).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let order_id = Uuid::new_v4();

    let service = start(&isolation, port);
    wait_ready(&client, &base).await;
    assert_eq!(
        place(json!({"name": "John Doe", "order_id": order_id}), None)
            .await
            .unwrap()
            .status(),
        201
    );
    let first: Value = place(json!({"name": "Jane"}), Some("key-1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deliver = || {
        client
            .post(format!("{base}/api/v1/orders/{order_id}/deliver"))
            .header("Idempotency-Key", "deliver-1")
            .send()
    };
    let refused = assert_problem(deliver().await.unwrap(), 409, None).await;
    assert_eq!(refused["type"], "/problems/illegal-transition");
    service.kill();

    let _service = start(&isolation, port);
    wait_ready(&client, &base).await;
    let again = place(json!({"name": "John Doe", "order_id": order_id}), None)
        .await
        .unwrap();
    assert_problem(again, 409, None).await;
    let retry = place(json!({"name": "Jane"}), Some("key-1")).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(
        retry.json::<Value>().await.unwrap(),
        first,
        "the first answer survives the restart"
    );
    assert_eq!(
        place(json!({"name": "John Doe"}), None).await.unwrap().status(),
        201,
        "new orders are still accepted"
    );
    let reused = assert_problem(
        place(json!({"name": "Someone else"}), Some("key-1")).await.unwrap(),
        422,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(reused["type"], "/problems/idempotency-key-reused");

    // The rejection is remembered too: deciding again would deliver the order by now.
    for step in ["confirm", "start-processing"] {
        let response = client
            .post(format!("{base}/api/v1/orders/{order_id}/{step}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{step}");
    }
    let shipped = client
        .post(format!("{base}/api/v1/orders/{order_id}/ship"))
        .json(&json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}))
        .send()
        .await
        .unwrap();
    assert_eq!(shipped.status(), 200);
    assert_eq!(
        assert_problem(deliver().await.unwrap(), 409, None).await,
        refused,
        "the first rejection survives the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn card_numbers_and_cvcs_never_reach_a_log_line() {
    let isolation = Isolation::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("{}-command-api.log", isolation.id));
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    // As chatty as the service gets, and bad requests too: their errors are logged.
    env.push(("RUST_LOG", "trace".to_owned()));
    let service = ChildService::spawn_logged(Path::new(env!("CARGO_BIN_EXE_command-api")), &[], &env, &log);
    let client = crate::helpers::authorized_client();
    wait_ready(&client, &base).await;

    let purchase = crate::purchases::seed_purchase();
    let purchases = format!("{base}/api/v1/purchases");
    let accepted = client.post(&purchases).json(&purchase).send().await.unwrap();
    let purchase_id = accepted_purchase(accepted).await;
    let mut expired = purchase.clone();
    expired["card_expiry"] = json!("01/20");
    let mut as_number = purchase.clone();
    as_number["card_number"] = json!(4242424242424242_u64);
    for refused in [expired, as_number] {
        let response = client.post(&purchases).json(&refused).send().await.unwrap();
        assert_eq!(response.status(), 422, "{refused}");
    }
    // Wait until the reactor has charged it, so its logging is in the file too.
    purchase_events(&isolation, &purchase_id, "orderstream.purchase.authorized.v2").await;
    service.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 20, "the log is too short to prove anything");
    for secret in ["4242424242424242", "4242 4242 4242 4242", "\"9731\"", "9731 "] {
        assert!(!text.contains(secret), "{secret} is in the log");
    }
    let _ = std::fs::remove_file(&log);
}
