//! Liveness and readiness.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `GET /health`: the process is up and serving.
pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The `/ready` check of PostgreSQL. Its error text stays in the log: it can name hosts, users
/// and schemas, which an open endpoint must not tell anyone.
pub async fn database_check(pool: &sqlx::PgPool) -> Result<(), String> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop).map_err(|error| {
        tracing::warn!(%error, "readiness: PostgreSQL unreachable");
        "unreachable".to_owned()
    })
}

/// A `/ready` answer from named checks: 200 when all pass, 503 naming the failing ones.
pub fn ready(checks: &[(&str, Result<(), String>)]) -> Response {
    let all_ready = checks.iter().all(|(_, check)| check.is_ok());
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, check)| {
            let value = match check {
                Ok(()) => json!("ok"),
                Err(reason) => json!(reason),
            };
            ((*name).to_owned(), value)
        })
        .collect();
    let status = if all_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if all_ready { "ready" } else { "not_ready" }, "checks": details });
    (status, Json(body)).into_response()
}
