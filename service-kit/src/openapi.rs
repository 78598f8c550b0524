//! What the OpenAPI documents of every API share (feature `openapi`): the bearer-token scheme,
//! the `Problem` schema, and problem+json responses that name every `type` they can carry.
//!
//! A problem response is a type implementing `utoipa::ToResponse`, declared with
//! [`problem_responses!`](crate::problem_responses), so a route's `#[utoipa::path]` refers to it
//! by name and the document checks the `type` and `status` of every answer against it.
//!
//! [`api_document!`](crate::api_document) declares an API's whole document and the test that it
//! lists exactly the routes its API declares ([`coverage::assert_complete`], with `testing`);
//! [`serve`] answers `GET /openapi.json`.

use std::future::{ready, Ready};

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Response, ResponseBuilder};
use utoipa::Modify;

pub use utoipa;

/// The name of the bearer-token security scheme in every document.
pub const BEARER: &str = "bearer";

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The handler of `GET /openapi.json`: `document` rendered once, here, as the document only
/// changes with the code.
pub fn serve(document: &OpenApi) -> impl Fn() -> Ready<axum::response::Response> + Clone + Send + Sync + 'static {
    let json = axum::body::Bytes::from(render(document).to_string());
    move || ready(([(CONTENT_TYPE, "application/json")], json.clone()).into_response())
}

/// `document` as the JSON that is served.
///
/// utoipa 5 writes the fields of a response's link in snake case (`operation_id`), where OpenAPI
/// names them in camel case (`operationId`): a reader of the document would not find the linked
/// operation. They are renamed here, the one place a document becomes JSON.
pub fn render(document: &OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(document).expect("the OpenAPI document serialises to JSON");
    let operations = json["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut());
    let responses = operations
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    let links = responses
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
    json
}

/// Adds what every document shares to its components: the bearer scheme and the `Problem`
/// schema. Use as `#[openapi(modifiers(&service_kit::openapi::Shared))]`.
#[derive(Debug)]
pub struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT (HS256 or RS256) whose space-separated `scope` claim grants what a route \
                         lists; `sub` is the caller.",
                    ))
                    .build(),
            ),
        );
        components.schemas.insert("Problem".to_owned(), problem_schema().into());
    }
}

/// Adds the open operational routes every service answers, `GET /health`, `/ready`,
/// `/openapi.json` and, with `metrics`, `/metrics`, so that the document lists every route.
#[derive(Debug)]
pub struct Operational {
    pub metrics: bool,
}

impl Modify for Operational {
    fn modify(&self, openapi: &mut OpenApi) {
        let json = |description: &str, schema: ObjectBuilder| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                .build()
        };
        let ready = || {
            ObjectBuilder::new()
                .property(
                    "status",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["ready", "not_ready"])),
                )
                .required("status")
                .property(
                    "checks",
                    ObjectBuilder::new().additional_properties(Some(ObjectBuilder::new().schema_type(Type::String))),
                )
                .required("checks")
        };
        let mut operations = vec![
            (
                "/health",
                "live",
                "The process is up and serving.",
                vec![(
                    "200",
                    json(
                        "Up.",
                        ObjectBuilder::new()
                            .property(
                                "status",
                                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["ok"])),
                            )
                            .required("status"),
                    ),
                )],
            ),
            (
                "/ready",
                "ready",
                "Whether the service's dependencies are reachable; `checks` names each and why it fails.",
                vec![
                    ("200", json("Ready.", ready())),
                    ("503", json("Not ready; `checks` says why.", ready())),
                ],
            ),
            (
                "/openapi.json",
                "openapi",
                "This document.",
                vec![("200", json("The OpenAPI 3.1 document.", ObjectBuilder::new()))],
            ),
        ];
        if self.metrics {
            operations.push((
                "/metrics",
                "metrics",
                "Counters and gauges in the Prometheus text format.",
                vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The metrics.")
                        .content(
                            "text/plain",
                            ContentBuilder::new()
                                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                                .build(),
                        )
                        .build(),
                )],
            ));
        }
        for (path, id, summary, responses) in operations {
            let mut operation = OperationBuilder::new()
                .operation_id(Some(id))
                .summary(Some(summary))
                .tag("operations");
            for (status, response) in responses {
                operation = operation.response(status, response);
            }
            openapi
                .paths
                .add_path_operation(path, vec![HttpMethod::Get], operation.build());
        }
    }
}

/// A string schema allowing `values` only, and `null` too when `nullable` (an optional member
/// the server reads null as absent).
pub fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, nullable: bool) -> Schema {
    let mut allowed: Vec<serde_json::Value> = values.into_iter().map(serde_json::Value::from).collect();
    let schema_type = if nullable {
        allowed.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(allowed))
        .into()
}

/// The schema of an optional UUID member: a hyphenated UUID, or `null` read as absent. The
/// pattern, not only the format, so that a client generating requests from the document (and
/// the fuzzer) sends UUIDs rather than any string.
pub fn optional_uuid() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
        .pattern(Some(
            "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        ))
        .into()
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// RFC 9457 problem details as every orderstream API writes them; members beyond these are the
/// problem type's own (e.g. `current_version`, `allowed`).
fn problem_schema() -> Schema {
    ObjectBuilder::new()
        .description(Some(
            "RFC 9457 problem details. `type` is stable: switch on it. Extra members belong to the \
             problem type.",
        ))
        .property(
            "type",
            string("`/problems/{slug}`, a relative URI naming the kind of problem.")
                .format(Some(SchemaFormat::Custom("uri-reference".to_owned()))),
        )
        .required("type")
        .property("title", string("A short summary of the problem type."))
        .required("title")
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The HTTP status of the answer.")),
        )
        .required("status")
        .property("detail", string("What went wrong with this request."))
        .property(
            "field",
            string("The request field (body member, path or query parameter, header) at fault, when one is."),
        )
        .into()
}

/// An API's whole document: `base` (its info, components and tags) with every resource's
/// `routes` merged in, and the edge's answers added (see [`add_edge_responses`]).
pub fn assemble(base: OpenApi, routes: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut document = base;
    for part in routes {
        document.merge(part);
    }
    add_edge_responses(&mut document);
    document
}

/// Adds the answers the edge in front of every API route may give (see [`crate::edge`]) to each
/// operation that needs a token: 408 when the request took too long, 429 over the caller's rate
/// limit. Call once every route is in the document; the 503 `overloaded` of the concurrency cap
/// is already in every 503 problem response.
pub fn add_edge_responses(openapi: &mut OpenApi) {
    let timeout = problem_response(
        408,
        "The request was not received and handled within the request timeout; the connection is \
         closed. A command may still take effect: retry with the same `Idempotency-Key`.",
        &["request-timeout"],
    );
    let limited = problem_response(
        429,
        "Over the caller's rate limit; `Retry-After` says when to try again. Nothing was written.",
        &["too-many-requests"],
    );
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.security.as_ref().is_none_or(Vec::is_empty) {
                continue;
            }
            let responses = &mut operation.responses.responses;
            responses
                .entry("408".to_owned())
                .or_insert_with(|| timeout.clone().into());
            responses
                .entry("429".to_owned())
                .or_insert_with(|| limited.clone().into());
        }
    }
}

/// A problem+json response of `status` whose `type` is `/problems/{slug}` for one of `slugs`.
/// A 503 may also be the edge shedding load (`overloaded`); a 503 or 429 documents
/// `Retry-After`; a 401 or 403 the bearer challenge.
pub fn problem_response(status: u16, description: &str, slugs: &[&str]) -> Response {
    let mut slugs = slugs.to_vec();
    if status == 503 && !slugs.contains(&"overloaded") {
        slugs.push("overloaded");
    }
    let narrowed = ObjectBuilder::new()
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(slugs.iter().map(|slug| format!("/problems/{slug}")))),
        )
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([status])),
        );
    let schema = Schema::AllOf(
        AllOfBuilder::new()
            .item(Ref::from_schema_name("Problem"))
            .item(narrowed)
            .build(),
    );
    let mut response = ResponseBuilder::new()
        .description(description.trim())
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(schema)).build());
    if status == 503 || status == 429 {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    if status == 401 || status == 403 {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "The RFC 6750 bearer challenge: `invalid_token`, or `insufficient_scope` naming the scope.",
                ))
                .build(),
        );
    }
    response.build()
}

/// Declares problem responses as types implementing `utoipa::ToResponse`, each with its status,
/// its doc comment as description, and the slugs of the `type`s it may carry:
///
/// ```
/// service_kit::problem_responses! {
///     /// The order's status does not allow the transition.
///     pub Conflict = 409 ["illegal-transition", "wrong-aggregate"];
/// }
/// # use utoipa::ToResponse;
/// assert_eq!(Conflict::response().0, "Conflict");
/// ```
///
/// A route then lists it as `(status = 409, response = Conflict)`, and the document's
/// `components(responses(Conflict))` holds it once.
#[macro_export]
macro_rules! problem_responses {
    ($($(#[doc = $doc:literal])* $vis:vis $name:ident = $status:literal [$($slug:literal),+ $(,)?];)+) => {$(
        $(#[doc = $doc])*
        #[derive(Debug)]
        $vis struct $name;

        impl<'r> $crate::openapi::utoipa::ToResponse<'r> for $name {
            fn response() -> (
                &'r str,
                $crate::openapi::utoipa::openapi::RefOr<$crate::openapi::utoipa::openapi::Response>,
            ) {
                let description = concat!($($doc, "\n"),*);
                (stringify!($name), $crate::openapi::problem_response($status, description, &[$($slug),+]).into())
            }
        }
    )+};
}

/// Declares a set of problem responses that several routes answer alike, as a type implementing
/// `utoipa::IntoResponses` whose entries refer to responses declared with
/// [`problem_responses!`](crate::problem_responses):
///
/// ```
/// service_kit::problem_responses! {
///     /// No valid bearer token.
///     pub Unauthorized = 401 ["unauthorized"];
///     /// The token lacks the scope.
///     pub Forbidden = 403 ["forbidden"];
/// }
/// service_kit::problem_response_set! {
///     /// What any route behind a bearer token may answer.
///     pub Guarded { 401 => Unauthorized, 403 => Forbidden }
/// }
/// # use utoipa::IntoResponses;
/// assert_eq!(Guarded::responses().len(), 2);
/// ```
///
/// A route lists it among its own: `responses((status = 200, ...), Guarded, (status = 404, ...))`.
#[macro_export]
macro_rules! problem_response_set {
    ($($(#[doc = $doc:literal])* $vis:vis $name:ident { $($status:literal => $response:ident),+ $(,)? })+) => {$(
        $(#[doc = $doc])*
        #[derive(Debug)]
        $vis struct $name;

        impl $crate::openapi::utoipa::IntoResponses for $name {
            fn responses() -> ::std::collections::BTreeMap<
                String,
                $crate::openapi::utoipa::openapi::RefOr<$crate::openapi::utoipa::openapi::Response>,
            > {
                [$((
                    $status.to_string(),
                    $crate::openapi::utoipa::openapi::Ref::from_response_name(stringify!($response)).into(),
                )),+]
                .into_iter()
                .collect()
            }
        }
    )+};
}

/// Declares an API's whole document as a function: the API's own `#[openapi(...)]` items (info,
/// components, tags), what every document shares ([`Shared`], and [`Operational`] with
/// `/metrics` when `metrics` is true), and every resource's routes, assembled with the edge's
/// answers ([`assemble`]). It also declares the test that the document lists every route of the
/// API and that each of its `method` routes names its scopes and answers the `statuses` (see
/// [`coverage::assert_complete`], with `example` one of those routes):
///
/// ```ignore
/// service_kit::api_document! {
///     /// The whole document.
///     pub(super) fn document() {
///         metrics: false,
///         routes: [orders::OrdersApi, products::ProductsApi],
///         openapi(info(title = "orderstream query API"), tags((name = "orders"))),
///         covers: ("GET /api/v1/orders", "get", ["401", "403"]),
///     }
/// }
/// ```
#[macro_export]
macro_rules! api_document {
    (
        $(#[doc = $doc:literal])*
        $vis:vis fn $name:ident() {
            metrics: $metrics:literal,
            routes: [$($routes:path),+ $(,)?],
            openapi($($openapi:tt)*),
            covers: ($example:literal, $method:literal, [$($status:literal),+ $(,)?]) $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        $vis fn $name() -> $crate::openapi::utoipa::openapi::OpenApi {
            use $crate::openapi::utoipa::OpenApi as _;
            // utoipa reads modifiers as plain paths, so they are named here rather than by `$crate`.
            use $crate::openapi::{Operational, Shared};

            const OPERATIONAL: Operational = Operational { metrics: $metrics };

            #[derive($crate::openapi::utoipa::OpenApi)]
            #[openapi($($openapi)*, modifiers(&Shared, &OPERATIONAL))]
            struct ApiDoc;

            $crate::openapi::assemble(ApiDoc::openapi(), [$(<$routes>::openapi()),+])
        }

        #[cfg(test)]
        #[test]
        fn document_lists_every_route_with_its_scopes_and_problems() {
            $crate::openapi::coverage::assert_complete(
                &$name(),
                $crate::openapi::coverage::Expected {
                    manifest_dir: env!("CARGO_MANIFEST_DIR"),
                    example: $example,
                    method: $method,
                    statuses: &[$($status),+],
                },
            );
        }
    };
}

/// Checks that a document keeps up with the router (feature `testing`).
#[cfg(feature = "testing")]
pub mod coverage {
    use std::collections::BTreeSet;
    use std::path::Path;

    use utoipa::openapi::OpenApi;

    const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

    /// What one API's document must hold beyond what every API's does.
    #[derive(Debug, Clone, Copy)]
    pub struct Expected<'a> {
        /// The crate whose `src/http` declares the routes (`env!("CARGO_MANIFEST_DIR")`).
        pub manifest_dir: &'a str,
        /// One route that must be among them, so that a reader finding nothing fails.
        pub example: &'a str,
        /// The method of the API's own routes (`"get"`, `"post"`).
        pub method: &'a str,
        /// The statuses each of those routes must answer.
        pub statuses: &'a [&'a str],
    }

    /// Asserts what every API's document holds: OpenAPI 3.1, the bearer scheme, exactly the routes
    /// declared in the Rust files of `src/http` under the crate, and that each of the API's own
    /// routes (under `/api/`) names a bearer scope in each alternative and documents the expected
    /// statuses. Returns the document as JSON, for the API's own checks.
    pub fn assert_complete(document: &OpenApi, expected: Expected<'_>) -> serde_json::Value {
        let json = super::render(document);
        assert!(
            json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")),
            "{}",
            json["openapi"]
        );
        assert_eq!(json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let declared = declared_routes(&Path::new(expected.manifest_dir).join("src/http"));
        assert!(declared.contains(expected.example), "{declared:?}");
        assert_eq!(documented_operations(&json), declared);
        for (path, operation) in api_operations(&json, expected.method) {
            let scopes = operation["security"].as_array().expect("security");
            assert!(
                scopes.iter().all(|alternative| alternative["bearer"]
                    .as_array()
                    .is_some_and(|scopes| !scopes.is_empty())),
                "{path}: {scopes:?}"
            );
            for status in expected.statuses {
                assert!(operation["responses"][status].is_object(), "{path} lacks {status}");
            }
        }
        assert_links_resolve(&json);
        json
    }

    /// Asserts that each response link names an operation of the document by its `operationId`,
    /// and only parameters that operation takes: a link left behind by a renamed handler or
    /// parameter would send clients, and the stateful fuzzing, nowhere.
    fn assert_links_resolve(document: &serde_json::Value) {
        let operations: Vec<&serde_json::Value> = METHODS
            .iter()
            .flat_map(|method| api_operations(document, method).map(|(_, operation)| operation))
            .collect();
        let by_id = |id: &str| operations.iter().find(|operation| operation["operationId"] == id);
        for operation in &operations {
            let responses = operation["responses"].as_object().into_iter().flatten();
            for (status, response) in responses {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    let source = format!("{} {status} link {name}", operation["operationId"]);
                    let target_id = link["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{source} names no operationId"));
                    let target = by_id(target_id).unwrap_or_else(|| panic!("{source}: no operation {target_id}"));
                    let takes = |parameter: &str| {
                        target["parameters"]
                            .as_array()
                            .is_some_and(|taken| taken.iter().any(|p| p["name"] == parameter))
                    };
                    for parameter in link["parameters"].as_object().into_iter().flatten().map(|(p, _)| p) {
                        assert!(takes(parameter), "{source}: {target_id} takes no {parameter}");
                    }
                }
            }
        }
    }

    /// The `method` operations (`"get"`, `"post"`) of the API's own routes (under `/api/`), with
    /// their paths.
    pub fn api_operations<'a>(
        document: &'a serde_json::Value,
        method: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a serde_json::Value)> + 'a {
        document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(path, _)| path.starts_with("/api/"))
            .filter_map(move |(path, item)| Some((path.as_str(), item.get(method)?)))
    }

    /// Every operation of an OpenAPI document, as `"POST /api/v1/orders"`.
    pub fn documented_operations(document: &serde_json::Value) -> BTreeSet<String> {
        let Some(paths) = document["paths"].as_object() else {
            return BTreeSet::new();
        };
        paths
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter(|method| item.get(**method).is_some())
                    .map(move |method| format!("{} {path}", method.to_uppercase()))
            })
            .collect()
    }

    /// Every route declared as `.route("/path", get(..).post(..))` in the Rust files of `dir`
    /// (test modules left out), as `"GET /path"`. axum cannot list a router's routes, so the
    /// check that each is documented reads them where they are declared.
    pub fn declared_routes(dir: &Path) -> BTreeSet<String> {
        let mut routes = BTreeSet::new();
        let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|ext| ext == "rs") {
                let source = std::fs::read_to_string(&path).expect("readable source");
                let source = source.split("#[cfg(test)]").next().unwrap_or_default();
                routes.extend(routes_in(source));
            }
        }
        routes
    }

    fn routes_in(source: &str) -> Vec<String> {
        let mut routes = Vec::new();
        for (start, _) in source.match_indices(".route(") {
            let rest = source[start + ".route(".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let Some((path, rest)) = rest.split_once('"') else {
                continue;
            };
            // The method router is the rest of the call: up to the `)` closing `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(at, _)| at);
            let methods = &rest[..end];
            for method in METHODS {
                let called = methods.match_indices(&format!("{method}(")).any(|(at, _)| {
                    !methods[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if called {
                    routes.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        routes
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn routes_are_read_with_every_method() {
            let source = r#"
                Router::new()
                    .route("/api/v1/orders", post(place_order).get(list))
                    .route(
                        "/api/v1/orders/{order_id}/cancel",
                        axum::routing::post(cancel),
                    )
                    .route("/health", get(service_kit::health::live))
                    .route_layer(require_scope(verifier(), "read"))
            "#;
            assert_eq!(
                routes_in(source),
                [
                    "GET /api/v1/orders",
                    "POST /api/v1/orders",
                    "POST /api/v1/orders/{order_id}/cancel",
                    "GET /health"
                ]
            );
        }

        #[test]
        fn operations_are_read_from_the_paths() {
            let document = serde_json::json!({"paths": {
                "/a": {"get": {}, "post": {}, "parameters": []},
                "/b/{id}": {"delete": {}}
            }});
            let operations: Vec<String> = documented_operations(&document).into_iter().collect();
            assert_eq!(operations, ["DELETE /b/{id}", "GET /a", "POST /a"]);
        }
    }
}
