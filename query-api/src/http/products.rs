//! `products`: the catalog, one product by its SKU and every product in SKU order.
//!
//! The catalog is not per-user data: every reader reads every product, so no query has an owner
//! condition. The price leaves in the shape of every amount, `{"value": "12.50", "minor": 1250,
//! "currency": "USD"}`.

use axum::routing::get;
use axum::{Json, Router};
use domain::pricing::Sku;
use read_models::products::{self as table, ProductRow};
use serde::Serialize;
use service_kit::extract::{InvalidParameter, Path, Query};
use utoipa::{OpenApi, ToSchema};

use super::page::{page_of, parse_limit, query_path, stored_money, Amount, PageParams};
use super::reader::Read;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "products";

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/products", get(list))
        .route("/api/v1/products/{sku}", get(by_sku))
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(by_sku, list))]
pub(super) struct ProductsApi;

/// One product as clients see it.
#[derive(Debug, Serialize, ToSchema)]
struct Product {
    #[schema(example = "TEA-GREEN-100")]
    sku: String,
    name: String,
    description: Option<String>,
    price: Amount,
    stock: Stock,
    /// The product's version: the sequence of its latest event.
    version: i64,
}

/// The product's stock in units.
#[derive(Debug, Serialize, ToSchema)]
struct Stock {
    on_hand: i64,
    /// The part of `on_hand` held for orders.
    reserved: i64,
    /// What a new order may take: `on_hand - reserved`.
    available: i64,
}

impl TryFrom<ProductRow> for Product {
    type Error = sqlx::Error;

    fn try_from(record: ProductRow) -> Result<Self, Self::Error> {
        let price = stored_money("price_minor", record.price_minor, &record.currency)?;
        Ok(Self {
            sku: record.sku,
            name: record.name,
            description: record.description,
            price: Amount::of(price),
            stock: Stock {
                on_hand: record.on_hand,
                reserved: record.reserved,
                available: record.on_hand - record.reserved,
            },
            version: record.version,
        })
    }
}

page_of!(ProductPage of Product);

/// A SKU from the path: one the catalog could hold, or a 422 naming `sku`.
fn parse_sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(ApiError::InvalidField)
}

query_path! {
    for catalog readers;
    path = "/api/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path, description = "The product's SKU")),
    ok = ("The product.", Product), not_found = ProductNotFound, invalid = InvalidField;
    /// One product of the catalog with its stock, as of its latest event.
    async fn by_sku(read: Read, Path(sku): Path<String>) -> Result<Json<Product>, ApiError> {
        let sku = parse_sku(&sku)?;
        read.wait(PROJECTION).await?;
        let row = table::by_sku(read.pool(), sku.as_str())
            .await?
            .ok_or_else(|| ApiError::ProductNotFound { sku: sku.as_str().to_owned() })?;
        Ok(Json(Product::try_from(row)?))
    }
}

query_path! {
    for catalog readers;
    path = "/api/v1/products", tag = "products",
    summary = "Every product of the catalog, by SKU.",
    params(PageParams),
    ok = ("One page, by SKU.", ProductPage);
    /// In keyset pages on the SKU: `next_after` is the last SKU of the page, and every page is
    /// one range scan of the SKU's unique index.
    async fn list(read: Read, Query(params): Query<PageParams>) -> Result<Json<ProductPage>, ApiError> {
        let limit = parse_limit(params.limit.as_deref())?;
        let after = params
            .after
            .as_deref()
            .map(|raw| {
                Sku::parse(raw).map_err(|invalid| ApiError::InvalidParameter(InvalidParameter {
                    field: "after",
                    detail: format!("must be a SKU from an earlier page: {}", invalid.problem),
                }))
            })
            .transpose()?;
        read.wait(PROJECTION).await?;
        let rows = table::page(read.pool(), after.as_ref().map(Sku::as_str), limit + 1).await?;
        let items = rows.into_iter().map(Product::try_from).collect::<Result<_, _>>()?;
        Ok(Json(ProductPage::of(items, limit, |product| product.sku.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ProductRow {
        ProductRow {
            product_id: uuid::Uuid::from_u128(1),
            sku: "TEA-GREEN-100".to_owned(),
            name: "Green tea".to_owned(),
            description: None,
            price_minor: 1_250,
            currency: "USD".to_owned(),
            on_hand: 10,
            reserved: 3,
            version: 4,
            defined_at: "2025-01-19T15:04:05Z".parse().unwrap(),
            updated_at: "2025-01-19T15:07:05Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_product_reads_with_its_price_and_what_is_available() {
        let json = serde_json::to_value(Product::try_from(record()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "sku": "TEA-GREEN-100",
                "name": "Green tea",
                "description": null,
                "price": {"value": "12.50", "minor": 1250, "currency": "USD"},
                "stock": {"on_hand": 10, "reserved": 3, "available": 7},
                "version": 4,
            })
        );
    }

    #[test]
    fn a_sku_the_catalog_cannot_hold_is_an_invalid_field() {
        assert_eq!(parse_sku("TEA-GREEN-100").unwrap().as_str(), "TEA-GREEN-100");
        for bad in ["", "tea green", "é", &"A".repeat(65)] {
            assert!(matches!(parse_sku(bad), Err(ApiError::InvalidField(ref invalid)) if invalid.field == "sku"));
        }
    }
}
