use std::io::Write;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, ORIGIN, RETRY_AFTER};
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use super::*;
use crate::auth::mint_hs256;

const SECRET: &str = "edge-test-secret-of-at-least-32-bytes";

fn verifier() -> Verifier {
    Verifier::hs256(SECRET, None, None).expect("verifier")
}

fn bearer(subject: &str) -> String {
    let token = mint_hs256(SECRET, subject, &[], Duration::from_secs(600), None, None).expect("token");
    format!("Bearer {token}")
}

/// Settings with every limit out of the way, for tests to lower one at a time.
fn unlimited() -> EdgeArgs {
    EdgeArgs {
        rate_limit_per_second: 0.0,
        max_concurrent_requests: 0,
        ..EdgeArgs::default()
    }
}

fn edge(args: EdgeArgs) -> Edge {
    Edge::new(&args, verifier()).expect("valid settings")
}

fn routes() -> Router {
    Router::new()
        .route("/api/thing", get(|| async { "thing" }))
        .route("/health", get(|| async { "ok" }))
}

/// [`routes`] behind a limit of `burst` requests per caller, then one every 1000 s: a caller
/// past its burst stays refused for the whole test.
fn rate_limited(burst: u32) -> Router {
    edge(EdgeArgs {
        rate_limit_per_second: 0.001,
        rate_limit_burst: burst,
        ..unlimited()
    })
    .wrap(routes())
}

async fn call(router: &Router, request: axum::http::request::Builder) -> (StatusCode, HeaderMap, String) {
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 16).await.expect("body");
    (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
}

fn get_as(subject: Option<&str>, path: &str) -> axum::http::request::Builder {
    let request = Request::builder().uri(path);
    match subject {
        Some(subject) => request.header(AUTHORIZATION, bearer(subject)),
        None => request,
    }
}

fn assert_problem(status: StatusCode, headers: &HeaderMap, body: &str, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON problem");
    assert_eq!(body["type"], kind);
    assert_eq!(body["status"], expected.as_u16());
}

#[tokio::test]
async fn the_burst_of_one_subject_ends_in_429_while_others_go_on() {
    let router = rate_limited(3);
    for n in 1..=3 {
        let (status, headers, _) = call(&router, get_as(Some("alice"), "/api/thing")).await;
        assert_eq!(status, StatusCode::OK, "request {n}");
        let standing = headers["ratelimit"].to_str().unwrap();
        assert!(
            standing.starts_with(&format!("\"caller\";r={};t=", 3 - n)),
            "{standing}"
        );
    }
    let (status, headers, body) = call(&router, get_as(Some("alice"), "/api/thing")).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/too-many-requests",
    );
    let retry_after: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().expect("seconds");
    assert!(retry_after >= 900, "a token every 1000 s: {retry_after}");
    assert_eq!(headers["ratelimit-policy"], "\"caller\";q=3;w=3000");
    assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"caller\";r=0;t="));

    let (status, _, body) = call(&router, get_as(Some("bob"), "/api/thing")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "thing"),
        "another subject is unaffected"
    );
    let (status, _, _) = call(&router, get_as(Some("alice"), "/health")).await;
    assert_eq!(status, StatusCode::OK, "probes are not limited");
}

#[tokio::test]
async fn callers_without_a_valid_token_are_counted_by_address() {
    let router = rate_limited(1);
    let from = |ip: [u8; 4], authorization: &str| {
        let mut request = Request::builder()
            .uri("/api/thing")
            .header(AUTHORIZATION, authorization)
            .body(Body::empty())
            .expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        let router = router.clone();
        async move { router.oneshot(request).await.expect("infallible").status() }
    };
    assert_eq!(from([10, 0, 0, 1], "Bearer garbage-1").await, StatusCode::OK);
    // Another garbage token from the same address shares the bucket; another address does not.
    assert_eq!(
        from([10, 0, 0, 1], "Bearer garbage-2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(from([10, 0, 0, 2], "Bearer garbage-1").await, StatusCode::OK);
    // A valid token claiming a subject is counted for that subject, not the address.
    assert_eq!(from([10, 0, 0, 1], &bearer("carol")).await, StatusCode::OK);
}

#[tokio::test]
async fn requests_over_the_cap_are_shed_at_once() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (entered_in, release_in) = (entered.clone(), release.clone());
    let routes = Router::new()
        .route(
            "/api/slow",
            get(move || {
                let (entered, release) = (entered_in.clone(), release_in.clone());
                async move {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        )
        .route("/health", get(|| async { "ok" }));
    let router = edge(EdgeArgs {
        max_concurrent_requests: 1,
        ..unlimited()
    })
    .wrap(routes);
    let first = tokio::spawn({
        let router = router.clone();
        async move { call(&router, Request::builder().uri("/api/slow")).await }
    });
    entered.notified().await;
    let (status, headers, body) = call(&router, Request::builder().uri("/api/slow")).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "/problems/overloaded",
    );
    assert_eq!(headers[RETRY_AFTER], "1");
    let (status, _, _) = call(&router, Request::builder().uri("/health")).await;
    assert_eq!(status, StatusCode::OK, "probes are not shed");
    release.notify_one();
    let (status, _, body) = first.await.expect("first request");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "done"));
    // The slot is free again.
    let second = tokio::spawn({
        let router = router.clone();
        async move { call(&router, Request::builder().uri("/api/slow")).await }
    });
    entered.notified().await;
    release.notify_one();
    assert_eq!(second.await.expect("second request").0, StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_408_and_closes_the_connection() {
    let routes = Router::new().route("/api/never", get(std::future::pending::<&'static str>));
    let router = edge(EdgeArgs {
        request_timeout: Duration::from_millis(50),
        ..unlimited()
    })
    .wrap(routes);
    let (status, headers, body) = call(&router, Request::builder().uri("/api/never")).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::REQUEST_TIMEOUT,
        "/problems/request-timeout",
    );
    assert_eq!(headers[CONNECTION], "close");
    assert!(body.contains("Idempotency-Key"), "{body}");
}

#[tokio::test]
async fn a_client_sending_its_body_too_slowly_is_cut_off() {
    let router = edge(EdgeArgs {
        request_timeout: Duration::from_millis(300),
        ..unlimited()
    })
    .wrap(Router::new().route("/api/echo", axum::routing::post(|body: String| async move { body })));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let address = listener.local_addr().expect("address");
    tokio::spawn(crate::server::serve(
        listener.into(),
        router,
        Duration::from_secs(5),
        std::future::pending(),
    ));
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"POST /api/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly a part")
        .await
        .expect("write");
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .expect("read");
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("/problems/request-timeout"), "{received}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let routes = Router::new().route(
        "/api/id",
        get(|headers: HeaderMap| async move { headers[REQUEST_ID].to_str().unwrap_or_default().to_owned() }),
    );
    let router = edge(unlimited()).wrap(routes);
    let (_, headers, seen) = call(
        &router,
        Request::builder().uri("/api/id").header(REQUEST_ID, "abc-123.x:y"),
    )
    .await;
    assert_eq!(
        (headers[REQUEST_ID].to_str().unwrap(), seen.as_str()),
        ("abc-123.x:y", "abc-123.x:y")
    );

    let (_, headers, seen) = call(&router, Request::builder().uri("/api/id")).await;
    let generated = headers[REQUEST_ID].to_str().unwrap();
    assert!(Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_eq!(seen, generated, "the handler sees the id the client gets");

    for unsafe_id in ["has space", "quote\"d", &"x".repeat(MAX_REQUEST_ID_LEN + 1)] {
        let (_, headers, _) = call(&router, Request::builder().uri("/api/id").header(REQUEST_ID, unsafe_id)).await;
        let replaced = headers[REQUEST_ID].to_str().unwrap();
        assert!(Uuid::parse_str(replaced).is_ok(), "{unsafe_id:?} became {replaced:?}");
    }
    // Answers made by the edge itself carry it too.
    let (status, headers, _) = call(&router, Request::builder().uri("/nowhere").header(REQUEST_ID, "r-1")).await;
    assert_eq!(
        (status, headers[REQUEST_ID].to_str().unwrap()),
        (StatusCode::NOT_FOUND, "r-1")
    );
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let routes = Router::new().route(
        "/api/log",
        get(|| async {
            tracing::info!("handling");
            tracing::warn!("something to note");
            "logged"
        }),
    );
    let router = edge(unlimited()).wrap(routes);
    call(
        &router,
        Request::builder().uri("/api/log").header(REQUEST_ID, "trace-me-42"),
    )
    .await;
    let output = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("handling") || line.contains("note"))
        .collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert!(
        lines.iter().all(|line| line.contains("request_id=trace-me-42")),
        "{output}"
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_as_configured() {
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/thing")
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,idempotency-key")
    };
    let off = edge(unlimited()).wrap(routes());
    let (_, headers, _) = call(&off, preflight("https://app.example.com")).await;
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );

    let on = edge(EdgeArgs {
        cors_allowed_origins: vec!["https://app.example.com".to_owned()],
        cors_max_age_seconds: 120,
        ..unlimited()
    })
    .wrap(routes());
    let (status, headers, _) = call(&on, preflight("https://app.example.com")).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(headers["access-control-max-age"], "120");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    assert!(headers.contains_key(REQUEST_ID));

    let (_, headers, _) = call(&on, preflight("https://evil.example")).await;
    assert!(!headers.contains_key("access-control-allow-origin"));

    let (status, headers, _) = call(
        &on,
        Request::builder()
            .uri("/api/thing")
            .header(ORIGIN, "https://app.example.com"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    let exposed = headers["access-control-expose-headers"].to_str().unwrap();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
}
