//! A command-api killed and started again restores its decider from the log.

use std::path::Path;

use serde_json::{json, Value};
use service_kit::testing::{wait_until, ChildService, Isolation};
use uuid::Uuid;

use crate::decider::Replica;
use crate::helpers::{accepted_purchase, assert_problem, purchase_events, READY_WITHIN};

/// The command-api binary these tests start as a process of its own.
const BINARY: &str = env!("CARGO_BIN_EXE_command-api");

/// A command-api process in `isolation` on `port`.
pub(crate) fn start(isolation: &Isolation, port: u16) -> ChildService {
    start_with(isolation, port, &[])
}

/// A command-api process in `isolation` on `port`, with `extra` settings on top.
pub(crate) fn start_with(isolation: &Isolation, port: u16, extra: &[(&'static str, String)]) -> ChildService {
    ChildService::spawn(Path::new(BINARY), &[], &settings(isolation, port, extra))
}

/// A command-api process in `isolation` on `port`, with `extra` settings on top, logging to `log`.
pub(crate) fn start_logged(
    isolation: &Isolation,
    port: u16,
    extra: &[(&'static str, String)],
    log: &Path,
) -> ChildService {
    ChildService::spawn_logged(Path::new(BINARY), &[], &settings(isolation, port, extra), log)
}

/// The environment of a command-api process in `isolation` on `port`, with `extra` on top.
fn settings(isolation: &Isolation, port: u16, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    env.extend(extra.iter().cloned());
    env
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
    let replica = Replica::new();
    let order_id = Uuid::new_v4();

    let service = replica.start(&isolation, &[]).await;
    let placed = replica
        .place(&json!({"name": "John Doe", "order_id": order_id}), None)
        .await;
    assert_eq!(placed.status(), 201);
    let first: Value = replica
        .place(&json!({"name": "Jane"}), Some("key-1"))
        .await
        .json()
        .await
        .unwrap();
    let deliver_path = format!("/api/v1/orders/{order_id}/deliver");
    let deliver = || replica.post(&deliver_path, None, Some("deliver-1"));
    let refused = assert_problem(deliver().await, 409, None).await;
    assert_eq!(refused["type"], "/problems/illegal-transition");
    service.kill();

    let _service = replica.start(&isolation, &[]).await;
    let again = replica
        .place(&json!({"name": "John Doe", "order_id": order_id}), None)
        .await;
    assert_problem(again, 409, None).await;
    let retry = replica.place(&json!({"name": "Jane"}), Some("key-1")).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(
        retry.json::<Value>().await.unwrap(),
        first,
        "the first answer survives the restart"
    );
    assert_eq!(
        replica.place(&json!({"name": "John Doe"}), None).await.status(),
        201,
        "new orders are still accepted"
    );
    let reused = assert_problem(
        replica.place(&json!({"name": "Someone else"}), Some("key-1")).await,
        422,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(reused["type"], "/problems/idempotency-key-reused");

    // The rejection is remembered too: deciding again would deliver the order by now.
    let ship = json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    for (step, body) in [("confirm", None), ("start-processing", None), ("ship", Some(&ship))] {
        let response = replica
            .post(&format!("/api/v1/orders/{order_id}/{step}"), body, None)
            .await;
        assert_eq!(response.status(), 200, "{step}");
    }
    assert_eq!(
        assert_problem(deliver().await, 409, None).await,
        refused,
        "the first rejection survives the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn card_numbers_and_cvcs_never_reach_a_log_line() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let log = isolation.temp_file("command-api.log");
    // As chatty as the service gets, and bad requests too: their errors are logged.
    let service = start_logged(&isolation, replica.port, &[("RUST_LOG", "trace".to_owned())], &log);
    replica.ready().await;

    let purchase = crate::purchases::seed_purchase();
    let purchases = "/api/v1/purchases";
    let accepted = replica.post(purchases, Some(&purchase), None).await;
    let purchase_id = accepted_purchase(accepted).await;
    let mut expired = purchase.clone();
    expired["card_expiry"] = json!("01/20");
    let mut as_number = purchase.clone();
    as_number["card_number"] = json!(4242424242424242_u64);
    for refused in [expired, as_number] {
        let response = replica.post(purchases, Some(&refused), None).await;
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
