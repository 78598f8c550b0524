//! What can go wrong: per request with a bearer token ([`AuthError`], answered as problem+json with
//! an RFC 6750 challenge), and at start-up or minting with the settings ([`AuthConfigError`]).

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use super::verifier::MIN_SECRET_BYTES;
use crate::Problem;

/// The realm every challenge names.
const REALM: &str = "orderstream";

/// Why a request was refused. Each message names the check that failed and never the token or
/// any of its contents, so it is safe to show the client (as the problem's `detail`) and to log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    /// Not `Bearer <token>`: another scheme, no token, several `Authorization` headers, non-ASCII.
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedHeader,
    /// Not a compact JWS with a JSON header and claims of the expected types.
    #[error("malformed token")]
    MalformedToken,
    #[error("token lacks the required `{0}` claim")]
    MissingClaim(String),
    /// Signed with another algorithm than the one configured (including `none`).
    #[error("token is not signed with the accepted algorithm")]
    UnexpectedAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    /// `nbf` is still in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The verification itself failed (e.g. a key unusable for the algorithm); logged where it
    /// happens, since it points at the configuration rather than at the client.
    #[error("token could not be verified")]
    Unverifiable,
    /// A valid token without the scope the route needs: 403, not 401, as another token would not
    /// help unless it carries that scope. `scope` lists the scopes any one of which would do,
    /// space-separated as in the `scope` claim.
    #[error("token lacks the `{scope}` scope")]
    InsufficientScope { scope: String },
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): no error code when no bearer token was offered,
    /// `invalid_token` for a bad one, `insufficient_scope` naming the scope needed.
    pub fn challenge(&self) -> String {
        match self {
            Self::MissingToken | Self::MalformedHeader => format!(r#"Bearer realm="{REALM}""#),
            Self::InsufficientScope { scope } if scope.split(' ').all(super::is_scope_token) => {
                format!(r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}""#)
            }
            Self::InsufficientScope { .. } => format!(r#"Bearer realm="{REALM}", error="insufficient_scope""#),
            _ => format!(r#"Bearer realm="{REALM}", error="invalid_token", error_description="{self}""#),
        }
    }

    /// The problem+json body: `/problems/unauthorized` or `/problems/forbidden`.
    pub fn problem(&self) -> Problem {
        match self {
            Self::InsufficientScope { scope } => {
                let detail = if scope.contains(' ') {
                    let listed: Vec<String> = scope.split(' ').map(|one| format!("`{one}`")).collect();
                    format!(
                        "this request needs a token with one of the scopes {}",
                        listed.join(", ")
                    )
                } else {
                    format!("this request needs a token with the `{scope}` scope")
                };
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                    .detail(detail)
                    .extension("scope", scope.as_str())
            }
            _ => Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").detail(self.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // Every challenge is visible ASCII by construction; the fallback only guards that claim.
        let challenge = HeaderValue::from_str(&self.challenge())
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="orderstream""#));
        let mut response = self.problem().into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}

/// Why the auth settings cannot be used; reported at start-up (or by `mint-token`) so a
/// misconfigured service refuses to start instead of refusing every request.
#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error(
        "no JWT key: set --jwt-secret (JWT_SECRET, or JWT_SECRET_FILE) for HS256 or --jwt-public-key-file (JWT_PUBLIC_KEY_FILE) for RS256"
    )]
    NoKey,
    /// The secret given inline and as a file, or its file unreadable.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("both --jwt-secret (JWT_SECRET) and --jwt-public-key-file (JWT_PUBLIC_KEY_FILE) are set: give exactly one, it decides the one accepted algorithm")]
    BothKeys,
    #[error("the JWT secret is shorter than {min} bytes, too weak for HS256 (RFC 7518 §3.2)", min = MIN_SECRET_BYTES)]
    WeakSecret,
    #[error("cannot read the JWT public key file {}: {source}", .path.display())]
    ReadPublicKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `origin` says where the key came from (the file, when there is one).
    #[error("{origin} is not a usable RSA public key: {reason}")]
    InvalidPublicKey { origin: String, reason: String },
    #[error("minting signs with HS256 and needs --jwt-secret (JWT_SECRET); with only a public key, tokens come from the identity provider holding the private key")]
    MintNeedsSecret,
    #[error("invalid scope {0:?}: a scope is non-empty printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)")]
    InvalidScope(String),
    #[error("the token subject must not be empty")]
    EmptySubject,
    #[error("the token lifetime must be between one second and {max} seconds", max = super::config::MAX_MINT_TTL_SECONDS)]
    InvalidTtl,
    #[error("the system clock reads a time before 1970")]
    ClockBeforeEpoch,
    #[error("signing the token failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}
