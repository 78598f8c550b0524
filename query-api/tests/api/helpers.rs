use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use query_api::console::Console;
use query_api::http::{self, ApiContext};
use service_kit::metrics::Registry;
use service_kit::testing::{test_auth, Isolation};
use sqlx::PgPool;
use tower::ServiceExt as _;

/// The console's trace link template in these tests.
pub(crate) const TRACE_URL: &str = "http://traces.test/trace/{trace_id}";

/// The query routes over a freshly migrated schema of their own, its pool for the test to write
/// rows with, and the isolation that owns the schema (held for as long as the test reads it).
/// A consistency token is waited for at most 300 ms.
pub(crate) async fn spawn_api() -> (Router, PgPool, Isolation) {
    spawn_api_waiting(Duration::from_millis(300)).await
}

/// [`spawn_api`], waiting at most `consistency_wait` for a consistency token.
pub(crate) async fn spawn_api_waiting(consistency_wait: Duration) -> (Router, PgPool, Isolation) {
    let isolation = Isolation::new();
    let pool = isolation.database.pool().expect("pool");
    read_models::schema::migrate(&pool, &isolation.database.database_schema)
        .await
        .expect("migrations");
    let console = Console::new(
        pool.clone(),
        isolation.database.database_schema.clone(),
        &isolation.kafka,
        TRACE_URL.to_owned(),
    )
    .expect("console");
    let context = ApiContext {
        pool: pool.clone(),
        console,
        consistency_wait,
        verifier: test_auth().verifier().expect("test verifier"),
        metrics: Registry::default(),
    };
    (http::router(context), pool, isolation)
}

/// `GET uri` with `authorization`: the status and the body as JSON.
pub(crate) async fn get(api: &Router, uri: &str, authorization: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::get(uri)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .expect("request");
    let response = api.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}
