//! The edge under abuse: rate limits per subject, load shedding, slow clients, request ids,
//! CORS, and secrets read from files.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use service_kit::auth::{mint_hs256, ALL_SCOPES};
use service_kit::testing::{wait_until, Isolation, TEST_FINGERPRINT_KEY, TEST_JWT_SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{assert_problem, config, spawn_app_with};

fn bearer(subject: &str) -> String {
    let token = mint_hs256(
        TEST_JWT_SECRET,
        subject,
        &ALL_SCOPES,
        Duration::from_secs(600),
        None,
        None,
    )
    .expect("token");
    format!("Bearer {token}")
}

/// An order the edge lets through and the validation refuses: no Kafka round trip needed.
async fn invalid_order(address: &str, subject: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{address}/api/v1/orders"))
        .header("authorization", bearer(subject))
        .json(&json!({ "name": "" }))
        .send()
        .await
        .expect("command-api answers")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_subjects_burst_ends_in_429_while_another_subject_goes_on() {
    let isolation = Isolation::new();
    let mut config = config(&isolation);
    config.edge.rate_limit_per_second = 0.001;
    config.edge.rate_limit_burst = 2;
    let app = spawn_app_with(isolation, config).await;

    for _ in 0..2 {
        assert_eq!(invalid_order(&app.address, "alice").await.status(), 422);
    }
    let refused = invalid_order(&app.address, "alice").await;
    let headers = refused.headers().clone();
    let body = assert_problem(refused, 429, None).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().expect("seconds");
    assert!(retry_after > 60, "{retry_after}");
    assert_eq!(headers["ratelimit-policy"], "\"caller\";q=2;w=2000");
    assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"caller\";r=0;t="));

    let other = invalid_order(&app.address, "bob").await;
    assert_eq!(other.status(), 422, "another subject is not limited");
    assert_eq!(other.headers()["ratelimit"], "\"caller\";r=1;t=1000");
    let health = reqwest::get(format!("{}/health", app.address)).await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_the_concurrency_cap_get_503_at_once() {
    let isolation = Isolation::new();
    let mut config = config(&isolation);
    config.edge.max_concurrent_requests = 1;
    let app = spawn_app_with(isolation, config).await;

    // A client that sends its headers and part of the body holds the one slot while the
    // handler waits for the rest.
    let port = app.address.rsplit(':').next().expect("port");
    let mut holder = TcpStream::connect(format!("127.0.0.1:{port}")).await.expect("connect");
    let head = format!(
        "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\":",
        bearer("alice")
    );
    holder.write_all(head.as_bytes()).await.expect("write");

    let (body, retry_after, took) = wait_until("a request to be shed", Duration::from_secs(10), || async {
        let started = Instant::now();
        let response = invalid_order(&app.address, "bob").await;
        if response.status() != 503 {
            return None;
        }
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.ok()?;
        Some((body, retry_after, started.elapsed()))
    })
    .await;
    assert_eq!(body["type"], "/problems/overloaded");
    assert_eq!(retry_after.expect("Retry-After"), "1");
    assert!(took < Duration::from_secs(1), "shed at once, not queued: {took:?}");
    let health = reqwest::get(format!("{}/health", app.address)).await.unwrap();
    assert_eq!(health.status(), 200, "probes are not shed");

    // The slot comes back once the holder goes away.
    drop(holder);
    wait_until("the slot to be free again", Duration::from_secs(10), || async {
        (invalid_order(&app.address, "bob").await.status() == 422).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_half_a_request_line_is_disconnected() {
    let isolation = Isolation::new();
    let mut config = config(&isolation);
    config.edge.header_read_timeout = Duration::from_millis(500);
    let app = spawn_app_with(isolation, config).await;
    let port = app.address.rsplit(':').next().expect("port");

    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).await.expect("connect");
    let started = Instant::now();
    stream.write_all(b"POST /api/v1/ord").await.expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("disconnected within the timeout")
        .expect("read");
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(450) && held < Duration::from_secs(3),
        "{held:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_echoed_or_generated_and_cors_follows_the_settings() {
    let isolation = Isolation::new();
    let mut config = config(&isolation);
    config.edge.cors_allowed_origins = vec!["https://shop.example.com".to_owned()];
    let app = spawn_app_with(isolation, config).await;
    let client = reqwest::Client::new();

    let echoed = invalid_order_with_id(&client, &app.address, Some("client-id-7")).await;
    assert_eq!(echoed.headers()["x-request-id"], "client-id-7");
    let generated = invalid_order_with_id(&client, &app.address, None).await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/orders", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://shop.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

async fn invalid_order_with_id(client: &reqwest::Client, address: &str, id: Option<&str>) -> reqwest::Response {
    let mut request = client
        .post(format!("{address}/api/v1/orders"))
        .header("authorization", bearer("alice"))
        .json(&json!({ "name": "" }));
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.expect("answers");
    assert_eq!(response.status(), 422);
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_files_and_never_show_in_debug() {
    let isolation = Isolation::new();
    let dir = std::env::temp_dir().join(format!("orderstream-secrets-{}", isolation.id));
    std::fs::create_dir_all(&dir).expect("secrets dir");
    let (jwt_file, key_file) = (dir.join("jwt"), dir.join("fingerprint"));
    std::fs::write(&jwt_file, format!("{TEST_JWT_SECRET}\n")).expect("jwt secret file");
    std::fs::write(&key_file, TEST_FINGERPRINT_KEY).expect("key file");

    let mut config = config(&isolation);
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(TEST_JWT_SECRET) && !debug.contains(TEST_FINGERPRINT_KEY),
        "{debug}"
    );
    config.auth.jwt_secret = None;
    config.auth.jwt_secret_file = Some(jwt_file);
    config.card_fingerprint_key = None;
    config.card_fingerprint_key_file = Some(key_file);
    let app = spawn_app_with(isolation, config).await;
    let _ = std::fs::remove_dir_all(&dir);

    // A token signed with the secret is accepted: the request gets as far as validation.
    assert_eq!(invalid_order(&app.address, "alice").await.status(), 422);
    app.stop().await;
}
