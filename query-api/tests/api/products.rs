//! `GET /api/v1/products/{sku}` and `GET /api/v1/products`: the catalog, read by any reader.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use domain::pricing::Sku;
use read_models::products::{self, ProductRow};
use serde_json::json;
use service_kit::testing::{bearer, bearer_staff, bearer_user};
use service_kit::ConsistencyToken;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{get, spawn_api};

fn product(sku: &str, on_hand: i64, reserved: i64) -> ProductRow {
    ProductRow {
        product_id: domain::product::product_id(&Sku::parse(sku).unwrap()),
        sku: sku.to_owned(),
        name: format!("Product {sku}"),
        description: Some("Loose leaf".to_owned()),
        price_minor: 1_250,
        currency: "USD".to_owned(),
        on_hand,
        reserved,
        version: 3,
        defined_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        updated_at: "2025-01-19T15:07:05Z".parse().unwrap(),
    }
}

async fn write(pool: &PgPool, rows: Vec<ProductRow>) {
    let mut tx = pool.begin().await.unwrap();
    products::upsert(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_product_reads_by_sku_for_every_reader_of_the_catalog() {
    let (api, pool, _isolation) = spawn_api().await;
    write(&pool, vec![product("TEA-GREEN-100", 10, 3)]).await;
    let expected = json!({
        "sku": "TEA-GREEN-100",
        "name": "Product TEA-GREEN-100",
        "description": "Loose leaf",
        "price": {"value": "12.50", "minor": 1250, "currency": "USD"},
        "stock": {"on_hand": 10, "reserved": 3, "available": 7},
        "version": 3,
    });
    // Any user reads the catalog, whoever else's token it is; so do staff and the catalog's keepers.
    for token in [
        bearer_user(Uuid::new_v4()),
        bearer_user(Uuid::new_v4()),
        bearer_staff(),
        bearer(&["catalog:read"]),
        bearer(&["catalog:write"]),
    ] {
        let (status, body) = get(&api, "/api/v1/products/TEA-GREEN-100", &token).await;
        assert_eq!((status, &body), (StatusCode::OK, &expected));
    }
    let (status, body) = get(&api, "/api/v1/products/TEA-GREEN-100", &bearer(&["orders:write"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn an_unknown_sku_is_not_found_and_an_invalid_one_unprocessable() {
    let (api, _, _isolation) = spawn_api().await;
    let reader = bearer(&["catalog:read"]);
    let (status, body) = get(&api, "/api/v1/products/NO-SUCH-SKU", &reader).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("product-not-found"), "{body}");
    let (status, body) = get(&api, "/api/v1/products/tea%20green", &reader).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("invalid-field"), "{body}");
    assert_eq!(body["field"], "sku");
}

#[tokio::test]
async fn the_catalog_pages_by_sku() {
    let (api, pool, _isolation) = spawn_api().await;
    write(
        &pool,
        (0..5).rev().map(|i| product(&format!("SKU-{i}"), i, 0)).collect(),
    )
    .await;
    let reader = bearer_user(Uuid::new_v4());
    let mut skus = Vec::new();
    let mut uri = "/api/v1/products?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = get(&api, &uri, &reader).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            skus.push(item["sku"].as_str().unwrap().to_owned());
        }
        let Some(next) = body["next_after"].as_str() else { break };
        uri = format!("/api/v1/products?limit=2&after={next}");
    }
    assert_eq!(pages, 3);
    assert_eq!(skus, ["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"]);
    let (status, body) = get(&api, "/api/v1/products?after=not%20a%20sku", &reader).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("after")),
        "{body}"
    );
}

#[tokio::test]
async fn a_consistency_token_waits_for_the_products_projection() {
    let (api, pool, _isolation) = spawn_api().await;
    let token = ConsistencyToken::at(0, 5).encode();
    let uri = format!("/api/v1/products/TEA-GREEN-100?consistency_token={token}");
    let reader = bearer(&["catalog:read"]);
    let (status, body) = get(&api, &uri, &reader).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("not-yet-consistent"), "{body}");

    // The product and the checkpoint that passes the token commit together, as the projector
    // writes them.
    let mut tx = pool.begin().await.unwrap();
    products::upsert(&mut tx, vec![product("TEA-GREEN-100", 1, 0)])
        .await
        .unwrap();
    read_models::checkpoint::save_checkpoints(&mut tx, "products", &BTreeMap::from([(0, 5)]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = get(&api, &uri, &reader).await;
    assert_eq!(
        (status, &body["stock"]["available"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
}
