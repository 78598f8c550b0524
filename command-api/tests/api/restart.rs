//! A command-api killed and started again restores its decider from the log.

use std::path::Path;

use serde_json::{json, Value};
use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use uuid::Uuid;

use crate::helpers::{assert_problem, READY_WITHIN};

fn start(isolation: &Isolation, port: u16) -> ChildService {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    ChildService::spawn(Path::new(env!("CARGO_BIN_EXE_command-api")), &[], &env)
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until("command-api to be ready", READY_WITHIN, || async {
        let response = client.get(format!("{base}/ready")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_stay_rejected_after_the_command_api_is_killed_and_restarted() {
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
}
