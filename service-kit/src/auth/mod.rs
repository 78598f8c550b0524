//! Bearer-token authentication (feature `auth`): who may write and read is decided by the scopes
//! of a JWT the client sends as `Authorization: Bearer <jwt>`.
//!
//! The services only verify tokens; an identity provider issues them (RS256, the services hold its
//! public key), or for local use a shared HS256 secret both signs and verifies (`mint-token`). One
//! algorithm per deployment, chosen by which key is configured, so a token can never pick the
//! algorithm it is checked with (`alg: none`, or an HS256 token signed with the public key).
//!
//! - [`AuthArgs`]: the key, issuer and audience from the environment, turned into a [`Verifier`].
//! - [`Verifier`]: checks the `Authorization` header and yields the token's [`Claims`].
//! - [`require_scope`] / [`require_any_scope`]: route layers answering 401/403 problem+json unless
//!   the token carries a scope; handlers then read the [`Claims`] from the request.
//! - [`user_id_of`] / [`Claims::user_id`]: the user a token's `sub` stands for, decided here only.
//! - [`mint_hs256`] and [`mint`] ([`MintArgs`], [`TokenKind`]): tokens for local use and tests.
//!
//! Two kinds of caller: a user ([`USER_SCOPES`]) acts on and reads only its own orders and
//! purchases; staff ([`STAFF_SCOPES`]) move orders through their lifecycle, cancel and refund
//! any, and read everything. A token may hold scopes of both.
//!
//! ```
//! use axum::routing::{get, post};
//! use axum::Router;
//! use service_kit::auth::{require_scope, AuthArgs, AuthConfigError, Claims, ORDERS_WRITE};
//!
//! async fn place_order(claims: Claims) -> String {
//!     format!("placed for {}", claims.sub)
//! }
//!
//! fn router(auth: &AuthArgs) -> Result<Router, AuthConfigError> {
//!     let verifier = auth.verifier()?; // at start-up: a bad key stops the service here
//!     Ok(Router::new()
//!         .route("/api/v1/orders", post(place_order))
//!         .route_layer(require_scope(verifier.clone(), ORDERS_WRITE))
//!         // Added after the layer: stays open.
//!         .route("/health", get(service_kit::health::live)))
//! }
//! ```

mod config;
mod error;
mod layer;
mod subject;
mod verifier;

pub use config::{mint, mint_hs256, AuthArgs, MintArgs, TokenKind, MAX_MINT_TTL_SECONDS};
pub use error::{AuthConfigError, AuthError};
pub use layer::{authenticate, require_any_scope, require_scope, RequireScope, RequireScopeLayer};
pub use subject::user_id_of;
pub use verifier::{Claims, Verifier, LEEWAY};

/// A user placing its own orders and cancelling them (`POST /api/v1/orders`, `.../cancel`).
pub const ORDERS_WRITE: &str = "orders:write";
/// A user requesting its own purchases (`POST /api/v1/purchases`).
pub const PURCHASES_WRITE: &str = "purchases:write";
/// A user reading its own orders, order histories, purchases and spend.
pub const READ: &str = "read";
/// Staff: confirm, start processing, ship, deliver and cancel any order; with `orders:write`,
/// place orders for any user.
pub const ORDERS_MANAGE: &str = "orders:manage";
/// Staff: refund purchases; with `purchases:write`, request purchases for any user.
pub const PURCHASES_REFUND: &str = "purchases:refund";
/// Staff: every read, of every user, and the `track-users` read model.
pub const READ_ALL: &str = "read:all";
/// Staff: define products, change their prices, receive and adjust stock; and read the catalog.
pub const CATALOG_WRITE: &str = "catalog:write";
/// Reading the catalog only: products, prices and stock (a shop front, say). Every reader
/// scope reads the catalog too.
pub const CATALOG_READ: &str = "catalog:read";

/// A user registering, reading and deleting its own webhooks and their deliveries.
pub const WEBHOOKS_WRITE: &str = "webhooks:write";

/// Operators: query-api's console (partitions, lag, rates, ownership, rebuilds, dead letters,
/// any order's timeline). No business data is changed with it, but it reads across users.
pub const OPERATOR: &str = "operator";

/// What a user's token carries.
pub const USER_SCOPES: [&str; 4] = [ORDERS_WRITE, PURCHASES_WRITE, READ, WEBHOOKS_WRITE];
/// What a staff member's token carries.
pub const STAFF_SCOPES: [&str; 5] = [ORDERS_MANAGE, PURCHASES_REFUND, READ_ALL, CATALOG_WRITE, OPERATOR];
/// Every scope the product knows: a caller that is both a user and staff.
pub const ALL_SCOPES: [&str; 10] = [
    ORDERS_WRITE,
    PURCHASES_WRITE,
    READ,
    ORDERS_MANAGE,
    PURCHASES_REFUND,
    READ_ALL,
    CATALOG_WRITE,
    CATALOG_READ,
    WEBHOOKS_WRITE,
    OPERATOR,
];

/// Whether `scope` is a valid OAuth 2 scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`),
/// which also makes it safe to quote inside a `WWW-Authenticate` header.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod testkit;
