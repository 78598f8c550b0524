//! The command API's OpenAPI 3.1 document, served open at `GET /openapi.json`. It is generated
//! from the `#[utoipa::path]` of every route and the request and answer types beside the
//! handlers; the problem responses below list every problem `type` a route can answer, as
//! `error.rs` maps them.

use super::{orders, products, purchases};

service_kit::problem_responses! {
    /// The body is not JSON or not a JSON object (`malformed-body`), or a header is malformed
    /// (`invalid-header`; `field` names it). Nothing was written.
    pub(super) BadRequest = 400 ["malformed-body", "invalid-header"];
    /// A header is malformed: `Idempotency-Key` or `If-Match` (`field` names it). Nothing was
    /// written.
    pub(super) InvalidHeader = 400 ["invalid-header"];
    /// No valid bearer token (missing, malformed, expired, badly signed). Nothing was written.
    pub(super) Unauthorized = 401 ["unauthorized"];
    /// The token lacks the scope the route needs (`scope` names one), or a user acts for
    /// another user. Nothing was written.
    pub(super) Forbidden = 403 ["forbidden"];
    /// The body is over 64 KiB. Nothing was written.
    pub(super) BodyTooLarge = 413 ["body-too-large"];
    /// The body is not declared as JSON, or is sent with a `Content-Encoding`. Nothing was written.
    pub(super) UnsupportedMediaType = 415 ["unsupported-media-type"];
    /// A field is missing, of the wrong type, or breaks a rule; `field` names it (`items[2].quantity`
    /// for an item's). The message never quotes card data. Or the `Idempotency-Key` was used
    /// before with another body (`idempotency-key-reused`). Nothing was written.
    pub(super) InvalidField = 422 ["invalid-field", "idempotency-key-reused"];
    /// Kafka did not take the command in time and nothing was written (`log-unavailable`), or the
    /// command was written but no verdict came in time (`verdict-pending`: retry with the same
    /// `Idempotency-Key`).
    pub(super) Unavailable = 503 ["log-unavailable", "verdict-pending"];
    /// The `order_id` has been placed before (`order-already-placed`, with `order_id`), or is the
    /// id of another kind of resource (`wrong-aggregate`), or its history on the log could not be
    /// read (`aggregate-quarantined`), or an item the catalog sells was sent with another price
    /// than the catalog's, or in another currency (`price-changed`, with `sku`, `current_price`
    /// and `currency`; `field` names the item's `unit_price`).
    pub(super) OrderConflict = 409 [
        "order-already-placed",
        "wrong-aggregate",
        "aggregate-quarantined",
        "price-changed"
    ];
    /// As [`Unavailable`], or the order names items and the catalog could not be read up to date
    /// (`catalog-unavailable`). Nothing was written.
    pub(super) PlaceOrderUnavailable = 503 ["log-unavailable", "verdict-pending", "catalog-unavailable"];
    /// No product is sold under that SKU.
    pub(super) ProductNotFound = 404 ["product-not-found"];
    /// An adjustment would leave less on hand than orders hold (`below-reserved`, with
    /// `on_hand_after` and `reserved`), or more than can be counted (`too-much-stock`), or the SKU
    /// names another kind of resource (`wrong-aggregate`), or the product's history on the log
    /// could not be read (`aggregate-quarantined`). Nothing changed.
    pub(super) StockConflict = 409 ["below-reserved", "too-much-stock", "wrong-aggregate", "aggregate-quarantined"];
    /// No order has that id (for a user: none of theirs).
    pub(super) OrderNotFound = 404 ["order-not-found"];
    /// The order's status does not allow the transition (`illegal-transition`, with
    /// `current_status` and the `allowed` next statuses), or the id is another kind of resource
    /// (`wrong-aggregate`), or the order's history on the log could not be read
    /// (`aggregate-quarantined`). Nothing changed.
    pub(super) TransitionConflict = 409 ["illegal-transition", "wrong-aggregate", "aggregate-quarantined"];
    /// `If-Match` names another version than the order's (`expected_version`,
    /// `current_version`). Nothing changed.
    pub(super) StaleVersion = 412 ["stale-version"];
    /// The `purchase_id` has been requested before (`purchase-already-requested`), or is the id
    /// of another kind of resource (`wrong-aggregate`), or its history on the log could not be
    /// read (`aggregate-quarantined`).
    pub(super) PurchaseConflict = 409 ["purchase-already-requested", "wrong-aggregate", "aggregate-quarantined"];
    /// The payment gateway refused the card.
    pub(super) GatewayRefused = 502 ["gateway-refused"];
    /// Kafka or the payment gateway did not answer in time (`log-unavailable`,
    /// `gateway-unavailable`: nothing was written), or the command was written but no verdict
    /// came in time (`verdict-pending`: retry with the same `Idempotency-Key`).
    pub(super) PurchaseUnavailable = 503 ["log-unavailable", "verdict-pending", "gateway-unavailable"];
    /// No purchase has that id.
    pub(super) PurchaseNotFound = 404 ["purchase-not-found"];
    /// The purchase is not authorized (`purchase-not-refundable`, with `purchase_status`), the
    /// refund exceeds what is left once the refunds still waiting for the gateway are set aside
    /// (`refund-exceeds-refundable`, with `refundable`), a refund under the same id is still
    /// waiting for the gateway (`refund-already-requested`, with `refund_id`), or the id is
    /// another kind of resource (`wrong-aggregate`), or the purchase's history on the log could
    /// not be read (`aggregate-quarantined`). Nothing changed.
    pub(super) RefundConflict = 409 [
        "purchase-not-refundable",
        "refund-exceeds-refundable",
        "refund-already-requested",
        "wrong-aggregate",
        "aggregate-quarantined"
    ];
}

service_kit::problem_response_set! {
    /// What every command with a JSON body may answer before it is decided: a bad body or
    /// header, no token or scope, a field that breaks a rule.
    pub(super) BodyCommandProblems {
        400 => BadRequest,
        401 => Unauthorized,
        403 => Forbidden,
        413 => BodyTooLarge,
        415 => UnsupportedMediaType,
        422 => InvalidField,
    }
    /// What a command without a body may answer before it is decided: a bad header, no token or
    /// scope, a field that breaks a rule.
    pub(super) HeaderCommandProblems {
        400 => InvalidHeader,
        401 => Unauthorized,
        403 => Forbidden,
        422 => InvalidField,
    }
}

service_kit::api_document! {
    /// The whole document: the shared parts (with `/metrics`) and every resource's routes, each of
    /// which names its scopes and answers 401, 403 and 503.
    pub(super) fn document() {
        metrics: true,
        routes: [orders::OrdersApi, purchases::PurchasesApi, products::ProductsApi],
        openapi(
            info(
                title = "orderstream command API",
                description = "Places and moves orders, requests and refunds purchases, keeps the catalog. Each accepted command \
                               answers the events it wrote and a consistency token for the query API. Errors are \
                               `application/problem+json` with a stable `type`."
            ),
            components(responses(
                BadRequest,
                InvalidHeader,
                Unauthorized,
                Forbidden,
                BodyTooLarge,
                UnsupportedMediaType,
                InvalidField,
                Unavailable,
                OrderConflict,
                PlaceOrderUnavailable,
                OrderNotFound,
                TransitionConflict,
                StaleVersion,
                PurchaseConflict,
                GatewayRefused,
                PurchaseUnavailable,
                PurchaseNotFound,
                RefundConflict,
                ProductNotFound,
                StockConflict,
            )),
            tags(
                (name = "orders", description = "Placing orders and moving them through their lifecycle."),
                (name = "purchases", description = "Card purchases and their refunds."),
                (name = "catalog", description = "Products, their prices and their stock."),
                (name = "operations", description = "Health, readiness, metrics and this document; open."),
            )
        ),
        covers: ("POST /api/v1/orders", "post", ["401", "403", "503"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_body_refuses_members_it_does_not_have() {
        let document = service_kit::openapi::render(&document());
        let schemas = document["components"]["schemas"].as_object().expect("schemas");
        let requests: Vec<&String> = schemas.keys().filter(|name| name.ends_with("Request")).collect();
        assert!(requests.len() >= 9, "{requests:?}");
        for name in requests {
            assert_eq!(
                schemas[name]["additionalProperties"],
                serde_json::json!(false),
                "{name} must declare `deny_unknown_fields`"
            );
        }
    }

    #[test]
    fn forbidden_names_its_one_problem_type() {
        let document = service_kit::openapi::render(&document());
        let refused = &document["components"]["responses"]["Forbidden"]["content"]["application/problem+json"];
        assert_eq!(
            refused["schema"]["allOf"][1]["properties"]["type"]["enum"],
            serde_json::json!(["/problems/forbidden"])
        );
    }
}
