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
//! - [`require_scope`]: a route layer answering 401/403 problem+json unless the token carries a
//!   scope; handlers then read the [`Claims`] from the request.
//! - [`mint_hs256`] and [`mint`] ([`MintArgs`]): tokens for local use and tests.
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
mod verifier;

pub use config::{mint, mint_hs256, AuthArgs, MintArgs, MAX_MINT_TTL_SECONDS};
pub use error::{AuthConfigError, AuthError};
pub use layer::{require_scope, RequireScope, RequireScopeLayer};
pub use verifier::{Claims, Verifier, LEEWAY};

/// Placing orders (`POST /api/v1/orders`).
pub const ORDERS_WRITE: &str = "orders:write";
/// Requesting and refunding purchases (`POST /api/v1/purchases...`).
pub const PURCHASES_WRITE: &str = "purchases:write";
/// Reading the query side.
pub const READ: &str = "read";
/// Every scope the product knows: what `mint-token` grants unless told otherwise.
pub const ALL_SCOPES: [&str; 3] = [ORDERS_WRITE, PURCHASES_WRITE, READ];

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
