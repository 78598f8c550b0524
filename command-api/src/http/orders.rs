//! Orders: `POST /api/v1/orders` (the seed's endpoint, which also takes items and totals) and the
//! lifecycle transitions `POST /api/v1/orders/{id}/{confirm,start-processing,ship,deliver,cancel}`.
//!
//! Who may: a user (`orders:write`) places orders for itself and cancels its own; staff
//! (`orders:manage`) move any order through its lifecycle and cancel any. Whether a cancelling
//! user owns the order is decided by the domain, on the order's own state, so no race can slip
//! past it; a refusal looks exactly like a missing order.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::money::{Currency, Money};
use domain::order::{
    self, CancelOrder, CancelReason, Carrier, Channel, ConfirmOrder, DeliverOrder, OrderDetails, OrderName, OrderNote,
    PlaceOrder, ShipOrder, StartProcessing, TrackingNumber,
};
use domain::pricing::{self, ItemName, LineItem, Quantity, Sku, Totals};
use domain::product::{StockLine, StockQuantity};
use domain::{Command, FieldProblem, InvalidField};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use service_kit::auth::{require_any_scope, require_scope, Claims, Verifier, ORDERS_MANAGE, ORDERS_WRITE};
use utoipa::openapi::schema::Schema;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::command::{digested, CommandRequest, IdempotencyKey};
use super::extract::{Json, Path};
use super::fields::{acting_for, decimal, integer, text};
use super::openapi::{
    BodyCommandProblems, HeaderCommandProblems, OrderConflict, OrderNotFound, PlaceOrderUnavailable, StaleVersion,
    TransitionConflict, Unavailable,
};
use super::{Accepted, ApiContext, ApiError};
use crate::bus::CommandBus;
use crate::catalog::CatalogEntry;
use crate::outcome::WrittenEvent;
use crate::payments::Fingerprinter;

/// Most items one order may hold.
const MAX_ITEMS: usize = 100;

/// Who may cancel: the owner (`orders:write`) or staff (`orders:manage`).
const CANCELLERS: &[&str] = &[ORDERS_WRITE, ORDERS_MANAGE];

pub(super) fn router<B: CommandBus>(verifier: &Verifier, fingerprints: &Fingerprinter) -> Router<ApiContext<B>> {
    let place = Router::new().route("/api/v1/orders", post(place_order::<B>));
    let place = digested(place, fingerprints).route_layer(require_scope(verifier.clone(), ORDERS_WRITE));
    let manage = Router::new()
        .route("/api/v1/orders/{order_id}/confirm", post(confirm::<B>))
        .route(
            "/api/v1/orders/{order_id}/start-processing",
            post(start_processing::<B>),
        )
        .route("/api/v1/orders/{order_id}/ship", post(ship::<B>))
        .route("/api/v1/orders/{order_id}/deliver", post(deliver::<B>));
    let manage = digested(manage, fingerprints).route_layer(require_scope(verifier.clone(), ORDERS_MANAGE));
    let cancel = Router::new().route("/api/v1/orders/{order_id}/cancel", post(cancel::<B>));
    let cancel = digested(cancel, fingerprints).route_layer(require_any_scope(verifier.clone(), CANCELLERS));
    place.merge(manage).merge(cancel)
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(place_order, confirm, start_processing, ship, deliver, cancel))]
pub(super) struct OrdersApi;

/// The channels an order may be placed through, as the domain spells them.
fn channel_schema() -> Schema {
    service_kit::openapi::string_enum(Channel::ALL.map(Channel::as_str), true)
}

/// The currencies the domain knows.
fn currency_schema() -> Schema {
    service_kit::openapi::string_enum(Currency::all().map(Currency::code), true)
}

/// The seed's body, plus the optional priced part; every field optional here so that a missing
/// one is reported by name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceOrderRequest {
    /// The customer's name: trimmed, 1 to 200 characters.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 200)]
    name: Option<String>,
    /// At most 2,000 characters.
    #[schema(max_length = 2000)]
    note: Option<String>,
    /// Chosen by the server when absent: derived from the `Idempotency-Key` when one is sent.
    #[schema(schema_with = service_kit::openapi::optional_uuid)]
    order_id: Option<Uuid>,
    /// The user the order is for: the caller when absent; another user only with `orders:manage`.
    #[schema(schema_with = service_kit::openapi::optional_uuid)]
    user_id: Option<Value>,
    /// Required with `items`: the ISO 4217 code of the prices.
    #[schema(schema_with = currency_schema)]
    currency: Option<Value>,
    /// The line items, 1 to 100; an order without items has no price.
    #[schema(min_items = 1, max_items = 100)]
    items: Option<Vec<ItemRequest>>,
    /// Where the order is placed: `api` (when absent), `web`, `mobile` or `pos`.
    #[schema(schema_with = channel_schema)]
    channel: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemRequest {
    /// 1 to 64 letters, digits, `.`, `_` and `-`.
    #[schema(value_type = String, required = true, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    sku: Option<Value>,
    /// 1 to 200 characters; for an item the catalog sells, the product's name when absent.
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    name: Option<Value>,
    #[schema(value_type = i32, required = true, minimum = 1, maximum = 1000)]
    quantity: Option<Value>,
    /// A JSON number in the currency, with no more decimals than it has (USD 2, JPY 0). For an
    /// item the catalog sells, the catalog's price when absent; when sent, it must be that price
    /// (else a 409 `price-changed`). Required for any other item. Above 0, at most 1,000,000.
    #[schema(value_type = f64, exclusive_minimum = 0, maximum = 1000000)]
    unit_price: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize, ToSchema)]
struct OrderAccepted {
    #[schema(value_type = String, example = "success")]
    status: &'static str,
    order_id: Uuid,
    /// Pass to the query API to read your own write.
    consistency_token: String,
    /// The events the command wrote, in order.
    events: Vec<WrittenEvent>,
    /// The priced order's totals; only for an order placed with items.
    #[serde(skip_serializing_if = "Option::is_none")]
    totals: Option<TotalsBody>,
}

/// The totals as the pricing policy computed them, each a decimal string in the currency.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Totals)]
struct TotalsBody {
    #[schema(value_type = String, example = "USD")]
    currency: &'static str,
    #[schema(example = "29.68")]
    subtotal: String,
    #[schema(example = "2.37")]
    tax: String,
    #[schema(example = "9.99")]
    shipping: String,
    #[schema(example = "42.04")]
    total: String,
}

impl From<&Totals> for TotalsBody {
    fn from(totals: &Totals) -> Self {
        Self {
            currency: totals.total.currency().code(),
            subtotal: totals.subtotal.to_decimal_string(),
            tax: totals.tax.to_decimal_string(),
            shipping: totals.shipping.to_decimal_string(),
            total: totals.total.to_decimal_string(),
        }
    }
}

/// Names an item's field with its index, e.g. `items[2].quantity`.
fn item_error(index: usize, invalid: InvalidField) -> ApiError {
    ApiError::FieldType {
        field: format!("items[{index}].{}", invalid.field),
        detail: invalid.problem.to_string(),
    }
}

/// One line of an order. An item the catalog sells takes its name (when the item has none) and
/// its price: a `unit_price` sent with it must be the catalog's, or the client is told the price
/// changed. Any other item needs both.
fn line_item(
    index: usize,
    item: ItemRequest,
    currency: Currency,
    catalog: &HashMap<Sku, CatalogEntry>,
) -> Result<LineItem, ApiError> {
    let at = |invalid| item_error(index, invalid);
    let quantity = integer("quantity", item.quantity).and_then(Quantity::new).map_err(at)?;
    let sku = Sku::parse(&text("sku", item.sku).map_err(at)?).map_err(at)?;
    let Some(entry) = catalog.get(&sku) else {
        return Ok(LineItem {
            name: ItemName::parse(&text("name", item.name).map_err(at)?).map_err(at)?,
            unit_price: Money::from_decimal(
                "unit_price",
                decimal("unit_price", item.unit_price).map_err(at)?,
                currency,
            )
            .map_err(at)?,
            sku,
            quantity,
        });
    };
    let name = match item.name {
        None | Some(Value::Null) => ItemName::parse(entry.name.as_str()),
        name => text("name", name).and_then(|name| ItemName::parse(&name)),
    }
    .map_err(at)?;
    let sent = item
        .unit_price
        .map(|price| {
            decimal("unit_price", Some(price)).and_then(|price| Money::from_decimal("unit_price", price, currency))
        })
        .transpose()
        .map_err(at)?;
    if entry.price.currency() != currency || sent.is_some_and(|sent| sent != entry.price) {
        return Err(ApiError::PriceChanged {
            index,
            sku: sku.as_str().to_owned(),
            current: entry.price,
        });
    }
    Ok(LineItem {
        sku,
        name,
        quantity,
        unit_price: entry.price,
    })
}

/// The catalog items of `items`, one line per SKU with the quantities of its lines together.
fn catalog_items(items: &[LineItem], catalog: &HashMap<Sku, CatalogEntry>) -> Result<Vec<StockLine>, ApiError> {
    let mut quantities: BTreeMap<&Sku, i64> = BTreeMap::new();
    for item in items.iter().filter(|item| catalog.contains_key(&item.sku)) {
        *quantities.entry(&item.sku).or_default() += i64::from(item.quantity.get());
    }
    quantities
        .into_iter()
        .map(|(sku, quantity)| {
            Ok(StockLine {
                sku: sku.clone(),
                quantity: StockQuantity::new(quantity)?,
            })
        })
        .collect()
}

/// The SKUs an order request names, as far as they parse: what to look up in the catalog before
/// the items are read in full.
fn requested_skus(request: &PlaceOrderRequest) -> Vec<Sku> {
    request
        .items
        .iter()
        .flatten()
        .filter_map(|item| match &item.sku {
            Some(Value::String(sku)) => Sku::parse(sku).ok(),
            _ => None,
        })
        .collect()
}

/// The channel of an order request; `None` (placed through the API) when absent or null.
fn channel(value: Option<Value>) -> Result<Option<Channel>, InvalidField> {
    match value {
        None | Some(Value::Null) => Ok(None),
        value => Channel::parse("channel", &text("channel", value)?).map(Some),
    }
}

/// The priced part of an order request, when it has one, placed for `user_id`, and its catalog
/// items.
fn details(
    request: &mut PlaceOrderRequest,
    user_id: Uuid,
    catalog: &HashMap<Sku, CatalogEntry>,
) -> Result<Option<(OrderDetails, Totals, Vec<StockLine>)>, ApiError> {
    let (items, currency) = match (request.items.take(), request.currency.take()) {
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(InvalidField::new("items", FieldProblem::Required).into()),
        (Some(items), currency) => (items, Currency::parse("currency", &text("currency", currency)?)?),
    };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::FieldType {
            field: "items".to_owned(),
            detail: format!("must hold 1 to {MAX_ITEMS} items"),
        });
    }
    let items = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| line_item(index, item, currency, catalog))
        .collect::<Result<Vec<_>, _>>()?;
    let totals = pricing::price(&items, currency).map_err(|problem| ApiError::FieldType {
        field: "items".to_owned(),
        detail: problem.to_string(),
    })?;
    let catalog_items = catalog_items(&items, catalog)?;
    Ok(Some((
        OrderDetails {
            user_id: Some(user_id),
            currency,
            items,
        },
        totals,
        catalog_items,
    )))
}

/// Place an order, with or without priced items.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    request_body = PlaceOrderRequest,
    params(IdempotencyKey),
    security(("bearer" = ["orders:write"])),
    responses(
        (status = 201, description = "The `OrderPlaced` event is on the log.", body = OrderAccepted, headers(
            ("Location" = String, description = "`/api/v1/orders/{order_id}`"),
            ("ETag" = String, description = "The order's new version, `\"<version>\"`, for the next `If-Match`"),
        ), links(
            ("confirm" = (operation_id = "confirm", parameters(("order_id" = "$response.body#/order_id")))),
            ("cancel" = (operation_id = "cancel", parameters(("order_id" = "$response.body#/order_id")))),
        )),
        BodyCommandProblems,
        (status = 409, response = OrderConflict),
        (status = 503, response = PlaceOrderUnavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id, command_id))]
async fn place_order<B: CommandBus>(
    State(context): State<ApiContext<B>>,
    meta: CommandRequest,
    claims: Claims,
    Json(mut request): Json<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let name = request
        .name
        .take()
        .ok_or(InvalidField::new("name", FieldProblem::Required))?;
    let name = OrderName::parse(&name)?;
    let note = request.note.as_deref().map(OrderNote::parse).transpose()?;
    // Another user's order only with `orders:manage`.
    let user_id = acting_for(&claims, request.user_id.take(), ORDERS_MANAGE)?;
    let skus = requested_skus(&request);
    let catalog = if skus.is_empty() {
        HashMap::new()
    } else {
        context.catalog.entries(&skus).await?
    };
    let details = details(&mut request, user_id, &catalog)?;
    let channel = channel(request.channel.take())?;
    let order_id = meta.new_id(request.order_id);
    tracing::Span::current()
        .record("order_id", tracing::field::display(order_id))
        .record("command_id", tracing::field::display(meta.command_id));

    let now = Utc::now();
    let totals = details.as_ref().map(|(_, totals, _)| TotalsBody::from(totals));
    let (details, catalog_items) = match details {
        Some((details, _, catalog_items)) => (Some(details), Some(catalog_items)),
        None => (None, None),
    };
    let command = Command::Order(order::Command::PlaceOrder(PlaceOrder {
        order_id,
        name,
        note,
        placed_at: now,
        details,
        channel,
        user_id: Some(user_id),
        catalog_items: catalog_items.filter(|items| !items.is_empty()),
    }));
    let accepted = context.decide(&meta.envelope(command, now)).await?;
    let location = format!("/api/v1/orders/{}", accepted.aggregate_id);
    let mut response = answer(StatusCode::CREATED, accepted, "success", totals);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The answer to an accepted order command; `ETag` carries the order's new version for the
/// next `If-Match`.
fn answer(status: StatusCode, accepted: Accepted, word: &'static str, totals: Option<TotalsBody>) -> Response {
    let version = accepted.events.last().map(|e| e.sequence);
    let body = OrderAccepted {
        status: word,
        order_id: accepted.aggregate_id,
        consistency_token: accepted.consistency_token,
        events: accepted.events,
        totals,
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(etag) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `If-Match: "3"` (or `3`): the order version the client acts on; `*`, any version.
fn expected_version(if_match: Option<&HeaderValue>) -> Result<Option<u64>, ApiError> {
    let Some(value) = if_match else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::InvalidHeader {
        header: "If-Match",
        detail: detail.to_owned(),
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    if text.starts_with("W/") {
        // RFC 9110 compares `If-Match` strongly: a weak tag never matches, and the ETags sent
        // are strong.
        return Err(invalid(
            "a weak tag (W/) never matches: send the version as the ETag gave it, such as \"3\"",
        ));
    }
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    // Tags compare as strings: `"03"` or `"+3"` is no tag this API gave, so it matches nothing.
    match text.parse::<u64>() {
        Ok(version) if version.to_string() == text => Ok(Some(version)),
        _ => Err(invalid("must be an order version as an ETag gave it, such as \"3\"")),
    }
}

fn order_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| InvalidField::new("order_id", FieldProblem::WrongType { expected: "a UUID" }).into())
}

/// The body of `ship`; fields are loosely typed so each is checked by name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ShipRequest {
    /// 1 to 100 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    carrier: Option<Value>,
    /// 1 to 100 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    tracking_number: Option<Value>,
}

/// The body of `cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    /// Why the order is cancelled: 1 to 500 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500)]
    reason: Option<Value>,
}

/// What every transition request carries besides its body: the order id and `If-Match` as sent
/// (checked once the body is), and its command ids.
#[derive(Debug)]
struct TransitionRequest {
    raw_id: String,
    if_match: Option<HeaderValue>,
    meta: CommandRequest,
}

impl<S: Send + Sync> FromRequestParts<S> for TransitionRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let meta = CommandRequest::from_request_parts(parts, state).await?;
        Ok(Self {
            raw_id,
            if_match: parts.headers.get(header::IF_MATCH).cloned(),
            meta,
        })
    }
}

impl TransitionRequest {
    /// Decides the transition `command` builds from the order id, the `If-Match` version and the
    /// time.
    async fn decide<B: CommandBus>(
        &self,
        context: &ApiContext<B>,
        command: impl FnOnce(Uuid, Option<u64>, chrono::DateTime<Utc>) -> order::Command,
    ) -> Result<Response, ApiError> {
        let order_id = order_id(&self.raw_id)?;
        let expected = expected_version(self.if_match.as_ref())?;
        let now = Utc::now();
        let command = Command::Order(command(order_id, expected, now));
        let accepted = context.decide(&self.meta.envelope(command, now)).await?;
        Ok(answer(StatusCode::OK, accepted, "success", None))
    }
}

/// The OpenAPI description of a transition at `$path`, which the `$item` handler serves: every
/// transition takes the order id, `If-Match` and `Idempotency-Key`, and answers alike, but for
/// its scopes, its body and the problems it may answer before it is decided (`$problems`). Its
/// answer links the transitions the order may go on to (`next`, by handler name), so a client
/// reading the document, and the stateful fuzzing, can follow an order's lifecycle.
macro_rules! transition_path {
    (
        $path:tt, security($($security:tt)*), $(request_body = $body:ty,)? problems = $problems:ty,
        next($($next:literal),*), $item:item
    ) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "orders",
            $(request_body = $body,)?
            params(
                ("order_id" = Uuid, Path, description = "The order's id"),
                ("If-Match" = Option<String>, Header, example = "\"3\"",
                    description = "The order version (an earlier `ETag`) the request acts on; another is a 412"),
                IdempotencyKey,
            ),
            security($($security)*),
            responses(
                (status = 200, description = "The transition's event is on the log.", body = OrderAccepted, headers(
                    ("ETag" = String, description = "The order's new version, `\"<version>\"`, for the next `If-Match`"),
                ), links($(($next = (operation_id = $next, parameters(("order_id" = "$request.path.order_id")))),)*)),
                $problems,
                (status = 404, response = OrderNotFound),
                (status = 409, response = TransitionConflict),
                (status = 412, response = StaleVersion),
                (status = 503, response = Unavailable),
            )
        )]
        $item
    };
}

/// A staff transition without a body, whose command holds the order id, the expected version
/// and the time only.
macro_rules! staff_transition {
    ($(#[doc = $doc:literal])* $name:ident, $path:tt, $variant:ident, next($($next:literal),*)) => {
        transition_path!(
            $path,
            security(("bearer" = ["orders:manage"])),
            problems = HeaderCommandProblems,
            next($($next),*),
            $(#[doc = $doc])*
            #[tracing::instrument(skip_all, fields(order_id = %request.raw_id))]
            async fn $name<B: CommandBus>(
                State(context): State<ApiContext<B>>,
                request: TransitionRequest,
            ) -> Result<Response, ApiError> {
                request.decide(&context, |order_id, expected_version, at| {
                    order::Command::$variant($variant {
                        order_id,
                        expected_version,
                        at,
                    })
                })
                .await
            }
        );
    };
}

staff_transition!(
    /// Confirm a pending order (staff).
    confirm, "/api/v1/orders/{order_id}/confirm", ConfirmOrder, next("start_processing", "cancel")
);
staff_transition!(
    /// Start processing a confirmed order (staff).
    start_processing, "/api/v1/orders/{order_id}/start-processing", StartProcessing, next("ship")
);
staff_transition!(
    /// Record the delivery of a shipped order (staff).
    deliver, "/api/v1/orders/{order_id}/deliver", DeliverOrder, next()
);

transition_path!(
    "/api/v1/orders/{order_id}/ship",
    security(("bearer" = ["orders:manage"])),
    request_body = ShipRequest,
    problems = BodyCommandProblems,
    next("deliver"),
    /// Ship an order in processing, with its carrier and tracking number (staff).
    #[tracing::instrument(skip_all, fields(order_id = %request.raw_id))]
    async fn ship<B: CommandBus>(
        State(context): State<ApiContext<B>>,
        request: TransitionRequest,
        Json(body): Json<ShipRequest>,
    ) -> Result<Response, ApiError> {
        let carrier = Carrier::parse(&text("carrier", body.carrier)?)?;
        let tracking_number = TrackingNumber::parse(&text("tracking_number", body.tracking_number)?)?;
        request
            .decide(&context, |order_id, expected_version, at| {
                order::Command::ShipOrder(ShipOrder {
                    order_id,
                    carrier,
                    tracking_number,
                    expected_version,
                    at,
                })
            })
            .await
    }
);

transition_path!(
    "/api/v1/orders/{order_id}/cancel",
    security(("bearer" = ["orders:write"]), ("bearer" = ["orders:manage"])),
    request_body = CancelRequest,
    problems = BodyCommandProblems,
    next(),
    /// Cancel a pending or confirmed order: a user its own, staff any. A paid order is refunded.
    /// A user's cancel is checked by the decider against the order's owner (refused as if the order
    /// did not exist), so no race can get around it.
    #[tracing::instrument(skip_all, fields(order_id = %request.raw_id))]
    async fn cancel<B: CommandBus>(
        State(context): State<ApiContext<B>>,
        claims: Claims,
        request: TransitionRequest,
        Json(body): Json<CancelRequest>,
    ) -> Result<Response, ApiError> {
        let reason = CancelReason::parse(&text("reason", body.reason)?)?;
        let acting_user = (!claims.has_scope(ORDERS_MANAGE)).then(|| claims.user_id());
        request
            .decide(&context, |order_id, expected_version, at| {
                order::Command::CancelOrder(CancelOrder {
                    order_id,
                    reason,
                    expected_version,
                    at,
                    acting_user,
                })
            })
            .await
    }
);
