//! The console: its page is open, its data routes are for the `operator` scope only, and an
//! order's timeline carries each event's position, command and trace link.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use read_models::order_history::{self, HistoryRow};
use service_kit::auth::{OPERATOR, READ_ALL};
use service_kit::testing::bearer;
use sqlx::PgPool;
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::helpers::{get, spawn_api, TRACE_URL};

const DATA_ROUTES: [&str; 3] = [
    "/console/api/snapshot",
    "/console/api/stream",
    "/console/api/orders/00000000-0000-0000-0000-000000000001",
];

/// `GET uri` without a token: status, content type and body.
async fn get_open(api: &Router, uri: &str) -> (StatusCode, String, String) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = api.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_page_and_its_assets_are_open_and_hold_no_data() {
    let (api, _, _isolation) = spawn_api().await;
    let (status, content_type, page) = get_open(&api, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains(r#"<script src="/console/console.js">"#), "{page}");
    let (status, content_type, script) = get_open(&api, "/console/console.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/javascript"), "{content_type}");
    assert!(script.contains("/console/api/stream"));
    let (status, content_type, _) = get_open(&api, "/console/console.css").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/css; charset=utf-8")
    );
}

#[tokio::test]
async fn data_routes_refuse_a_missing_token_and_one_without_the_operator_scope() {
    let (api, _, _isolation) = spawn_api().await;
    for route in DATA_ROUTES {
        let (status, content_type, body) = get_open(&api, route).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route}: {body}");
        assert_eq!(content_type, "application/problem+json", "{route}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["type"], "/problems/unauthorized", "{route}");

        let (status, problem) = get(&api, route, &bearer(&[READ_ALL])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}: {problem}");
        assert_eq!(problem["type"], "/problems/forbidden", "{route}");
        assert_eq!(problem["scope"], OPERATOR, "{route}");
    }
}

async fn write(pool: &PgPool, rows: Vec<HistoryRow>) {
    let mut tx = pool.begin().await.unwrap();
    order_history::insert(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
}

fn event(order_id: Uuid, version: i64, offset: i64, trace_id: Option<&str>) -> HistoryRow {
    HistoryRow {
        order_id,
        version,
        event_type: format!("orderstream.order.event{version}.v1"),
        occurred_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        data: format!(r#"{{"order_id": "{order_id}"}}"#),
        log_partition: Some(2),
        log_offset: Some(offset),
        command_id: Some(Uuid::from_u128(version as u128)),
        trace_id: trace_id.map(str::to_owned),
    }
}

#[tokio::test]
async fn an_order_timeline_names_commands_traces_and_the_projections_past_it() {
    let (api, pool, _isolation) = spawn_api().await;
    let order_id = Uuid::new_v4();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    write(
        &pool,
        vec![event(order_id, 1, 10, Some(trace)), event(order_id, 2, 14, None)],
    )
    .await;
    let mut tx = pool.begin().await.unwrap();
    for (projection, next) in [("order_history", 15), ("order_status", 14)] {
        let offsets = [(2, next)].into_iter().collect();
        read_models::checkpoint::save_checkpoints(&mut tx, projection, &offsets)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let operator = bearer(&[OPERATOR]);
    let (status, timeline) = get(&api, &format!("/console/api/orders/{order_id}"), &operator).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[0]["data"]["order_id"], order_id.to_string());
    assert_eq!(events[0]["command_id"], Uuid::from_u128(1).to_string());
    assert_eq!(
        (events[0]["partition"].clone(), events[0]["offset"].clone()),
        (2.into(), 10.into())
    );
    assert_eq!(events[0]["trace_url"], TRACE_URL.replace("{trace_id}", trace));
    assert!(events[1]["trace_url"].is_null());
    // The latest event is at offset 14: order_history's checkpoint (15) is past it, order_status's
    // (14) is not yet.
    let reached: Vec<(String, bool)> = timeline["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["projection"].as_str().unwrap().to_owned(),
                p["reached"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reached,
        [("order_history".to_owned(), true), ("order_status".to_owned(), false)]
    );

    let (status, problem) = get(&api, &format!("/console/api/orders/{}", Uuid::new_v4()), &operator).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("/problems/not-found"))
    );
    let (status, problem) = get(&api, "/console/api/orders/not-a-uuid", &operator).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("order_id"))
    );
}
