//! The query API's OpenAPI 3.1 document, served open at `GET /openapi.json`. It is generated from
//! the `#[utoipa::path]` of every route and the answer types beside the handlers; the problem
//! responses below list every problem `type` a route can answer, as `error.rs` maps them.

use super::{orders, products, purchases, track_users};

service_kit::problem_responses! {
    /// A path segment, query parameter or header is malformed (`field` names it): an id that is
    /// not a UUID, a `limit` out of range, a foreign `after`, a bad consistency token.
    pub(super) InvalidParameter = 400 ["invalid-parameter"];
    /// No valid bearer token (missing, malformed, expired, badly signed).
    pub(super) Unauthorized = 401 ["unauthorized"];
    /// The token lacks the scope the route needs (`scope` names one).
    pub(super) Forbidden = 403 ["forbidden"];
    /// Nothing under that key, or nothing the caller may read: another user's data is not found.
    pub(super) NotFound = 404 ["not-found"];
    /// No product is sold under that SKU.
    pub(super) ProductNotFound = 404 ["product-not-found"];
    /// A SKU the catalog could not hold (`field` is `sku`).
    pub(super) InvalidField = 422 ["invalid-field"];
    /// The read model has not reached the consistency token in time (`not-yet-consistent`), or
    /// PostgreSQL is unavailable (`database-unavailable`).
    pub(super) Unavailable = 503 ["not-yet-consistent", "database-unavailable"];
}

service_kit::api_document! {
    /// The whole document: the shared parts and every resource's routes, each of which names its
    /// scopes and answers 400, 401, 403 and 503.
    pub(super) fn document() {
        metrics: true,
        routes: [
            track_users::TrackUsersApi,
            orders::OrdersApi,
            purchases::PurchasesApi,
            products::ProductsApi,
        ],
        openapi(
            info(
                title = "orderstream query API",
                description = "Reads the read models: orders, their history, purchases, spend per user, \
                               the product catalog and counters per customer name. Every query takes the `consistency_token` of an earlier \
                               write and waits, bounded, until the read model reflects it. Errors are \
                               `application/problem+json` with a stable `type`."
            ),
            components(responses(InvalidParameter, Unauthorized, Forbidden, NotFound, ProductNotFound, InvalidField, Unavailable)),
            tags(
                (name = "orders", description = "Orders as of their latest event, filtered listings, timelines."),
                (name = "purchases", description = "Purchases and what each user spent."),
                (name = "products", description = "The product catalog with each product's stock."),
                (name = "track-users", description = "Per customer name, how many orders and since when."),
                (name = "operations", description = "Health, readiness and this document; open."),
            )
        ),
        covers: ("GET /api/v1/orders/{order_id}", "get", ["400", "401", "403", "503"]),
    }
}

#[cfg(test)]
mod tests {
    use service_kit::openapi::coverage::api_operations;

    use super::*;

    #[test]
    fn every_query_takes_a_consistency_token_and_staff_may_read_it() {
        let document = service_kit::openapi::render(&document());
        let read_all = serde_json::json!({"bearer": ["read:all"]});
        for (path, operation) in api_operations(&document, "get") {
            let parameters: Vec<&str> = operation["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter_map(|parameter| parameter["name"].as_str())
                .collect();
            assert!(parameters.contains(&"consistency_token"), "{path}: {parameters:?}");
            assert!(parameters.contains(&"X-Consistency-Token"), "{path}: {parameters:?}");
            assert!(
                operation["security"].as_array().expect("security").contains(&read_all),
                "{path}"
            );
        }
    }
}
