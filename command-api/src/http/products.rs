//! The catalog: `PUT /api/v1/products/{sku}` defines a product or changes its name, description or
//! price; `POST /api/v1/products/{sku}/stock-receipts` adds stock on hand and
//! `POST /api/v1/products/{sku}/stock-adjustments` corrects it, never below what orders hold.
//!
//! Staff only (`catalog:write`). A product's id derives from its SKU, so every request about one
//! SKU reaches the same aggregate; a `PUT` that changes nothing writes nothing.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::Router;
use chrono::Utc;
use domain::money::{Currency, Money};
use domain::pricing::Sku;
use domain::product::{
    self, product_id, AdjustStock, AdjustmentReason, DefineProduct, ProductDescription, ProductName, ReceiveStock,
    StockDelta, StockQuantity,
};
use domain::Command;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use service_kit::auth::{require_scope, Verifier, CATALOG_WRITE};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::command::{digested, CommandRequest, IdempotencyKey};
use super::extract::{Json, Path};
use super::fields::{decimal, integer, text};
use super::openapi::{BodyCommandProblems, ProductNotFound, StockConflict, Unavailable};
use super::{ApiContext, ApiError};
use crate::bus::CommandBus;
use crate::outcome::WrittenEvent;
use crate::payments::Fingerprinter;

pub(super) fn router<B: CommandBus>(verifier: &Verifier, fingerprints: &Fingerprinter) -> Router<ApiContext<B>> {
    let routes = Router::new()
        .route("/api/v1/products/{sku}", put(define::<B>))
        .route("/api/v1/products/{sku}/stock-receipts", post(receive::<B>))
        .route("/api/v1/products/{sku}/stock-adjustments", post(adjust::<B>));
    digested(routes, fingerprints).route_layer(require_scope(verifier.clone(), CATALOG_WRITE))
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(define, receive, adjust))]
pub(super) struct ProductsApi;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductRequest {
    /// 1 to 200 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    name: Option<Value>,
    /// At most 2,000 characters.
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// A JSON number in the currency, with no more decimals than it has (USD 2, JPY 0); above 0,
    /// at most 1,000,000.
    #[schema(value_type = f64, required = true, exclusive_minimum = 0, maximum = 1000000)]
    price: Option<Box<RawValue>>,
    /// The ISO 4217 code of the price.
    #[schema(value_type = String, required = true, example = "USD")]
    currency: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StockReceiptRequest {
    /// 1 to 1,000,000 units.
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 1000000)]
    quantity: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StockAdjustmentRequest {
    /// Units added (positive) or taken away (negative), never zero, at most 1,000,000 either way.
    #[schema(value_type = i64, required = true, minimum = -1000000, maximum = 1000000)]
    quantity: Option<Value>,
    /// Why: 1 to 500 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500)]
    reason: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ProductAccepted {
    /// `defined`, `changed` or `unchanged` for a `PUT`; `stock_received` or `stock_adjusted`.
    status: &'static str,
    sku: String,
    product_id: Uuid,
    /// Pass to the query API to read your own write.
    consistency_token: String,
    /// The events the command wrote, in order (none for an unchanged product).
    events: Vec<WrittenEvent>,
}

/// Reads the `sku` of the path.
fn sku(raw: &str) -> Result<Sku, ApiError> {
    Ok(Sku::parse(raw)?)
}

/// Define a product, or change its name, description or price.
#[utoipa::path(
    put,
    path = "/api/v1/products/{sku}",
    tag = "catalog",
    request_body = ProductRequest,
    params(("sku" = String, Path, description = "1 to 64 letters, digits, `.`, `_` and `-`"), IdempotencyKey),
    security(("bearer" = ["catalog:write"])),
    responses(
        (status = 201, description = "`ProductDefined` is on the log.", body = ProductAccepted, headers(
            ("Location" = String, description = "`/api/v1/products/{sku}`"),
        ), links(
            ("receive" = (operation_id = "receive", parameters(("sku" = "$response.body#/sku")))),
            ("adjust" = (operation_id = "adjust", parameters(("sku" = "$response.body#/sku")))),
        )),
        (status = 200, description = "`ProductChanged` is on the log, or nothing changed.", body = ProductAccepted),
        BodyCommandProblems,
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %raw_sku, command_id))]
async fn define<B: CommandBus>(
    State(context): State<ApiContext<B>>,
    Path(raw_sku): Path<String>,
    meta: CommandRequest,
    Json(request): Json<ProductRequest>,
) -> Result<Response, ApiError> {
    let sku = sku(&raw_sku)?;
    let name = ProductName::parse(&text("name", request.name)?)?;
    let description = request
        .description
        .as_deref()
        .map(ProductDescription::parse)
        .transpose()?;
    let currency = Currency::parse("currency", &text("currency", request.currency)?)?;
    let price = Money::from_decimal("price", decimal("price", request.price)?, currency)?;
    let command = product::Command::DefineProduct(DefineProduct {
        product_id: product_id(&sku),
        sku: sku.clone(),
        name,
        description,
        price,
        at: Utc::now(),
    });
    let answer = |accepted: &super::Accepted| match accepted.events.first() {
        Some(event) if event.event_type == product::PRODUCT_DEFINED_V1 => (StatusCode::CREATED, "defined"),
        Some(_) => (StatusCode::OK, "changed"),
        None => (StatusCode::OK, "unchanged"),
    };
    let mut response = decide(&context, &meta, &sku, command, answer).await?;
    if response.status() == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/products/{}", sku.as_str())) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

/// A change of the stock on hand: the `$name` handler at `$path` reads a `$body`, builds its
/// command from the SKU and the body (`$command`), and answers 200 with `$word` once the event
/// (`$written`) is on the log. Both stock routes take the SKU and `Idempotency-Key` and may answer
/// the same problems.
macro_rules! stock_change {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $path:literal, $body:ident, written = $written:literal, answer = $word:literal,
        |$sku:ident, $request:ident| $command:expr
    ) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "catalog",
            request_body = $body,
            params(("sku" = String, Path, description = "The product's SKU"), IdempotencyKey),
            security(("bearer" = ["catalog:write"])),
            responses(
                (status = 200, description = $written, body = ProductAccepted),
                BodyCommandProblems,
                (status = 404, response = ProductNotFound),
                (status = 409, response = StockConflict),
                (status = 503, response = Unavailable),
            )
        )]
        $(#[doc = $doc])*
        #[tracing::instrument(skip_all, fields(sku = %raw_sku, command_id))]
        async fn $name<B: CommandBus>(
            State(context): State<ApiContext<B>>,
            Path(raw_sku): Path<String>,
            meta: CommandRequest,
            Json($request): Json<$body>,
        ) -> Result<Response, ApiError> {
            let $sku = sku(&raw_sku)?;
            let command = $command;
            decide(&context, &meta, &$sku, command, |_| (StatusCode::OK, $word)).await
        }
    };
}

stock_change!(
    /// Add received units to the stock on hand.
    receive, "/api/v1/products/{sku}/stock-receipts", StockReceiptRequest,
    written = "`StockReceived` is on the log.", answer = "stock_received",
    |sku, request| product::Command::ReceiveStock(ReceiveStock {
        product_id: product_id(&sku),
        quantity: StockQuantity::new(integer("quantity", request.quantity)?)?,
        at: Utc::now(),
    })
);

stock_change!(
    /// Correct the stock on hand, never below what orders hold.
    adjust, "/api/v1/products/{sku}/stock-adjustments", StockAdjustmentRequest,
    written = "`StockAdjusted` is on the log.", answer = "stock_adjusted",
    |sku, request| product::Command::AdjustStock(AdjustStock {
        product_id: product_id(&sku),
        quantity: StockDelta::new(integer("quantity", request.quantity)?)?,
        reason: AdjustmentReason::parse(&text("reason", request.reason)?)?,
        at: Utc::now(),
    })
);

/// Decides `command` about the product of `sku`, answering with the status and word `answer`
/// picks from what was accepted.
async fn decide<B: CommandBus>(
    context: &ApiContext<B>,
    meta: &CommandRequest,
    sku: &Sku,
    command: product::Command,
    answer: impl FnOnce(&super::Accepted) -> (StatusCode, &'static str),
) -> Result<Response, ApiError> {
    tracing::Span::current().record("command_id", tracing::field::display(meta.command_id));
    let accepted = context
        .decide(&meta.envelope(Command::Product(command), Utc::now()))
        .await?;
    let (status, word) = answer(&accepted);
    let body = ProductAccepted {
        status: word,
        sku: sku.as_str().to_owned(),
        product_id: accepted.aggregate_id,
        consistency_token: accepted.consistency_token,
        events: accepted.events,
    };
    Ok((status, axum::Json(body)).into_response())
}
