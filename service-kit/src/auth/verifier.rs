//! Checking a bearer token: one algorithm, one key, `exp` always, `nbf`/`iss`/`aud` as configured.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use serde::{Deserialize, Deserializer};

use super::{AuthConfigError, AuthError};

/// Clock skew tolerated on `exp` and `nbf` between the issuer and this service.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Shortest HS256 secret accepted: as long as the hash output (RFC 7518 §3.2), so it cannot be
/// guessed more cheaply than a signature can be forged.
pub(crate) const MIN_SECRET_BYTES: usize = 32;
/// Smallest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Who the token was issued to (`sub`).
    pub sub: String,
    /// Granted scopes, from the space-separated `scope` claim (OAuth 2) and the `scp` claim
    /// (array or space-separated string), without duplicates.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Start of validity, seconds since the Unix epoch, when the token has one.
    pub nbf: Option<u64>,
    /// Issue time, seconds since the Unix epoch, when the token has one.
    pub iat: Option<u64>,
    pub iss: Option<String>,
    /// Intended audiences (`aud`, one or several); empty when the token names none.
    pub aud: Vec<String>,
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }

    /// `Ok` when the token carries `scope`, else the 403 to answer; for handlers whose needed
    /// scope depends on the request.
    pub fn ensure_scope(&self, scope: &str) -> Result<(), AuthError> {
        self.ensure_any_scope(&[scope])
    }

    /// `Ok` when the token carries at least one of `scopes`, else the 403 naming them all.
    pub fn ensure_any_scope(&self, scopes: &[&str]) -> Result<(), AuthError> {
        if scopes.iter().any(|scope| self.has_scope(scope)) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                scope: scopes.join(" "),
            })
        }
    }
}

/// Checks bearer tokens against one key. Cheap to clone (the key is shared).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    algorithm: Algorithm,
    /// `alg` as it must appear in the token header.
    algorithm_name: &'static str,
    key: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.inner.algorithm_name)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Accepts HS256 tokens signed with `secret` (its UTF-8 bytes, at least 32 of them).
    /// `issuer`/`audience`, when given and not empty, must then be in every token.
    pub fn hs256(secret: &str, issuer: Option<&str>, audience: Option<&str>) -> Result<Self, AuthConfigError> {
        check_secret(secret)?;
        let key = DecodingKey::from_secret(secret.as_bytes());
        Ok(Self::new(Algorithm::HS256, "HS256", key, issuer, audience))
    }

    /// Accepts RS256 tokens signed by the private half of `pem`: an RSA public key of at least
    /// 2048 bits, as `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn rs256_pem(pem: &str, issuer: Option<&str>, audience: Option<&str>) -> Result<Self, AuthConfigError> {
        Self::rs256_pem_from(pem, "the JWT public key", issuer, audience)
    }

    /// [`Verifier::rs256_pem`], naming `origin` (e.g. the file) in errors.
    pub(crate) fn rs256_pem_from(
        pem: &str,
        origin: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, AuthConfigError> {
        let public_key = rsa_public_key(pem).map_err(|reason| AuthConfigError::InvalidPublicKey {
            origin: origin.to_owned(),
            reason,
        })?;
        // Parsed and checked here rather than by `jsonwebtoken`, which would take any PEM (even a
        // private key) and fail only on the first request.
        let key = DecodingKey::from_rsa_raw_components(&public_key.n().to_bytes_be(), &public_key.e().to_bytes_be());
        Ok(Self::new(Algorithm::RS256, "RS256", key, issuer, audience))
    }

    fn new(
        algorithm: Algorithm,
        algorithm_name: &'static str,
        key: DecodingKey,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let issuer = issuer.filter(|issuer| !issuer.is_empty()).map(str::to_owned);
        let audience = audience.filter(|audience| !audience.is_empty()).map(str::to_owned);
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        // The library checks `iss` and `aud` only when the token has them: requiring them is what
        // makes a configured issuer or audience binding.
        if let Some(issuer) = &issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Unconfigured means unchecked, rather than rejecting every token that names one.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            inner: Arc::new(Inner {
                algorithm,
                algorithm_name,
                key,
                validation,
                issuer,
                audience,
            }),
        }
    }

    /// Checks an `Authorization` header value (`None` when the request has none): `Bearer <jwt>`,
    /// the scheme in any case, then the token as [`Verifier::verify_token`] does.
    pub fn verify(&self, authorization_header: Option<&str>) -> Result<Claims, AuthError> {
        let header = authorization_header.ok_or(AuthError::MissingToken)?;
        self.verify_token(bearer_token(header)?)
    }

    /// Checks a bare JWT: signed with the configured algorithm and key, not expired (`exp` is
    /// required), not before its `nbf`, with the configured issuer and audience, and a subject.
    pub fn verify_token(&self, token: &str) -> Result<Claims, AuthError> {
        self.check_algorithm(token)?;
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &self.inner.key, &self.inner.validation).map_err(classify)?;
        data.claims.into_claims()
    }

    /// Rejects a token whose header names another algorithm before any key is used. The library
    /// checks the same, but reports `alg: none` as a JSON error; here it is named for what it is.
    fn check_algorithm(&self, token: &str) -> Result<(), AuthError> {
        #[derive(Deserialize)]
        struct JoseHeader {
            alg: String,
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::MalformedToken);
        };
        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::MalformedToken)?;
        let header: JoseHeader = serde_json::from_slice(&header).map_err(|_| AuthError::MalformedToken)?;
        if header.alg == self.inner.algorithm_name {
            Ok(())
        } else {
            Err(AuthError::UnexpectedAlgorithm)
        }
    }

    /// The one algorithm this verifier accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }
}

pub(crate) fn check_secret(secret: &str) -> Result<(), AuthConfigError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(AuthConfigError::WeakSecret);
    }
    Ok(())
}

/// The token of `Bearer <token>`, the scheme matched case-insensitively (RFC 7235 §2.1).
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, token) = header
        .trim()
        .split_once([' ', '\t'])
        .ok_or(AuthError::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

fn rsa_public_key(pem: &str) -> Result<RsaPublicKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;

    let pem = pem.trim();
    if pem.contains("PRIVATE KEY-----") {
        return Err("this is a private key; configure its public half (`openssl pkey -in key.pem -pubout`)".to_owned());
    }
    let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|error| error.to_string())?
    } else {
        RsaPublicKey::from_public_key_pem(pem)
            .map_err(|error| format!("expected a PEM `PUBLIC KEY` or `RSA PUBLIC KEY` block ({error})"))?
    };
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!("{bits}-bit modulus, at least {MIN_RSA_BITS} bits are required"));
    }
    Ok(key)
}

/// Maps the library's verdict onto what the client is told.
fn classify(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            AuthError::UnexpectedAlgorithm
        }
        ErrorKind::InvalidToken
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::MalformedToken,
        _ => {
            // Key or provider trouble: the configuration's fault, so worth a warning. The
            // library's message describes the key, never the token.
            tracing::warn!(%error, "bearer token could not be verified");
            AuthError::Unverifiable
        }
    }
}

/// The claims as they come, loosely typed so that a missing one is reported by name.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    iss: Option<String>,
    aud: Option<OneOrMany>,
    scope: Option<String>,
    scp: Option<OneOrMany>,
}

impl RawClaims {
    fn into_claims(self) -> Result<Claims, AuthError> {
        let sub = self
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| AuthError::MissingClaim("sub".to_owned()))?;
        let exp = self.exp.ok_or_else(|| AuthError::MissingClaim("exp".to_owned()))?.0;
        let mut scopes: Vec<String> = Vec::new();
        let granted = self.scope.iter().flat_map(|scope| scope.split_ascii_whitespace());
        let granted = granted.chain(self.scp.iter().flat_map(OneOrMany::words));
        for scope in granted {
            if !scopes.iter().any(|known| known == scope) {
                scopes.push(scope.to_owned());
            }
        }
        Ok(Claims {
            sub,
            scopes,
            exp,
            nbf: self.nbf.map(|date| date.0),
            iat: self.iat.map(|date| date.0),
            iss: self.iss,
            aud: match self.aud {
                None => Vec::new(),
                Some(OneOrMany::One(aud)) => vec![aud],
                Some(OneOrMany::Many(aud)) => aud,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Space-separated words of a single string, or the entries of a list.
    fn words(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::One(words) => Box::new(words.split_ascii_whitespace()),
            Self::Many(entries) => Box::new(entries.iter().map(String::as_str)),
        }
    }
}

/// Seconds since the Unix epoch; RFC 7519 allows fractions, which are dropped.
struct NumericDate(u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        number
            .as_u64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds < u64::MAX as f64)
                    .map(|seconds| seconds as u64)
            })
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("a NumericDate is a non-negative number of seconds"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::testkit::{
        hs256_token, now, rs256_token, token_with_header, RSA_PUBLIC_PEM, SECRET, SECRET_OTHER,
    };
    use crate::auth::{ORDERS_WRITE, READ};

    fn hs256() -> Verifier {
        Verifier::hs256(SECRET, None, None).expect("test secret is long enough")
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn valid_claims() -> serde_json::Value {
        json!({ "sub": "user-1", "scope": "orders:write read", "exp": now() + 600, "iat": now() })
    }

    #[test]
    fn a_valid_hs256_token_yields_its_subject_and_scopes() {
        let token = hs256_token(SECRET, &valid_claims());
        let claims = hs256().verify(Some(&bearer(&token))).expect("valid token");
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.scopes, vec![ORDERS_WRITE.to_owned(), READ.to_owned()]);
        assert!(claims.has_scope(ORDERS_WRITE));
        assert!(!claims.has_scope("orders"));
        assert!(claims.iat.is_some());
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_scp_counts_too() {
        let claims = json!({ "sub": "u", "scp": ["purchases:write", "read"], "scope": "read", "exp": now() + 60 });
        let token = hs256_token(SECRET, &claims);
        let claims = hs256().verify(Some(&format!("bEaReR  {token} "))).expect("valid token");
        assert_eq!(claims.scopes, vec!["read".to_owned(), "purchases:write".to_owned()]);
    }

    #[test]
    fn a_missing_or_malformed_header_is_named_as_such() {
        let verifier = hs256();
        let token = hs256_token(SECRET, &valid_claims());
        assert_eq!(verifier.verify(None), Err(AuthError::MissingToken));
        for header in [
            format!("Basic {token}"),
            token.clone(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {token} extra"),
        ] {
            assert_eq!(
                verifier.verify(Some(&header)),
                Err(AuthError::MalformedHeader),
                "{header:?}"
            );
        }
    }

    #[test]
    fn garbage_is_a_malformed_token() {
        let verifier = hs256();
        for token in ["garbage", "a.b.c", "a.b", "a.b.c.d.e"] {
            assert_eq!(
                verifier.verify(Some(&bearer(token))),
                Err(AuthError::MalformedToken),
                "{token}"
            );
        }
        // The signature is checked first: unsigned garbage is a bad signature, signed garbage malformed.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        let unsigned = format!("{header}.bm90IGpzb24.c2ln");
        assert_eq!(verifier.verify(Some(&bearer(&unsigned))), Err(AuthError::BadSignature));
        let message = format!("{header}.bm90IGpzb24");
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signing");
        let signed = format!("{message}.{signature}");
        assert_eq!(verifier.verify(Some(&bearer(&signed))), Err(AuthError::MalformedToken));
        let wrong_types = hs256_token(SECRET, &json!({ "sub": 7, "exp": now() + 60 }));
        assert_eq!(
            verifier.verify(Some(&bearer(&wrong_types))),
            Err(AuthError::MalformedToken)
        );
    }

    #[test]
    fn expiry_is_required_and_checked_with_leeway() {
        let verifier = hs256();
        let expired = hs256_token(SECRET, &json!({ "sub": "u", "exp": now() - 120 }));
        assert_eq!(verifier.verify(Some(&bearer(&expired))), Err(AuthError::Expired));
        let within_leeway = hs256_token(SECRET, &json!({ "sub": "u", "exp": now() - 5 }));
        assert!(verifier.verify(Some(&bearer(&within_leeway))).is_ok());
        let forever = hs256_token(SECRET, &json!({ "sub": "u" }));
        assert_eq!(
            verifier.verify(Some(&bearer(&forever))),
            Err(AuthError::MissingClaim("exp".to_owned()))
        );
        let nobody = hs256_token(SECRET, &json!({ "exp": now() + 60 }));
        assert_eq!(
            verifier.verify(Some(&bearer(&nobody))),
            Err(AuthError::MissingClaim("sub".to_owned()))
        );
    }

    #[test]
    fn a_token_before_its_nbf_is_not_valid_yet() {
        let token = hs256_token(SECRET, &json!({ "sub": "u", "exp": now() + 600, "nbf": now() + 300 }));
        assert_eq!(hs256().verify(Some(&bearer(&token))), Err(AuthError::NotYetValid));
        let started = hs256_token(SECRET, &json!({ "sub": "u", "exp": now() + 600, "nbf": now() - 1 }));
        assert!(hs256().verify(Some(&bearer(&started))).is_ok());
    }

    #[test]
    fn another_secret_is_a_bad_signature() {
        let token = hs256_token(SECRET_OTHER, &valid_claims());
        assert_eq!(hs256().verify(Some(&bearer(&token))), Err(AuthError::BadSignature));
    }

    #[test]
    fn issuer_and_audience_are_binding_when_configured() {
        let verifier = Verifier::hs256(SECRET, Some("https://id.example"), Some("orderstream")).expect("verifier");
        let claims = |iss: Option<&str>, aud: serde_json::Value| {
            let mut claims = json!({ "sub": "u", "exp": now() + 60, "aud": aud });
            if let Some(iss) = iss {
                claims["iss"] = json!(iss);
            }
            bearer(&hs256_token(SECRET, &claims))
        };
        let good = verifier.verify(Some(&claims(
            Some("https://id.example"),
            json!(["other", "orderstream"]),
        )));
        assert_eq!(good.map(|claims| claims.aud.len()), Ok(2));
        assert_eq!(
            verifier.verify(Some(&claims(Some("https://evil.example"), json!("orderstream")))),
            Err(AuthError::WrongIssuer)
        );
        assert_eq!(
            verifier.verify(Some(&claims(Some("https://id.example"), json!("other")))),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            verifier.verify(Some(&claims(None, json!("orderstream")))),
            Err(AuthError::MissingClaim("iss".to_owned()))
        );
    }

    #[test]
    fn unconfigured_issuer_and_audience_are_not_checked() {
        let token = hs256_token(
            SECRET,
            &json!({ "sub": "u", "exp": now() + 60, "iss": "x", "aud": "y" }),
        );
        assert!(hs256().verify(Some(&bearer(&token))).is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        let claims = valid_claims();
        let unsigned = token_with_header(&json!({ "alg": "none", "typ": "JWT" }), &claims, "");
        assert_eq!(
            hs256().verify(Some(&bearer(&unsigned))),
            Err(AuthError::UnexpectedAlgorithm)
        );
        let other_hmac = token_with_header(&json!({ "alg": "HS512" }), &claims, "c2ln");
        assert_eq!(
            hs256().verify(Some(&bearer(&other_hmac))),
            Err(AuthError::UnexpectedAlgorithm)
        );
    }

    #[test]
    fn rs256_tokens_verify_against_the_public_key() {
        let verifier = Verifier::rs256_pem(RSA_PUBLIC_PEM, None, None).expect("test public key");
        let token = rs256_token(&valid_claims());
        let claims = verifier.verify(Some(&bearer(&token))).expect("valid RS256 token");
        assert!(claims.has_scope(ORDERS_WRITE));

        // Same header and signature, other claims: the signature no longer matches.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(json!({ "sub": "admin", "exp": now() + 60 }).to_string());
        parts[1] = &forged_claims;
        assert_eq!(
            verifier.verify(Some(&bearer(&parts.join(".")))),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn algorithms_cannot_be_swapped() {
        let rs256 = Verifier::rs256_pem(RSA_PUBLIC_PEM, None, None).expect("test public key");
        // The classic confusion: HS256 keyed with the (public) RSA key.
        let confused = hs256_token(RSA_PUBLIC_PEM, &valid_claims());
        assert_eq!(
            rs256.verify(Some(&bearer(&confused))),
            Err(AuthError::UnexpectedAlgorithm)
        );
        let plain_hs256 = hs256_token(SECRET, &valid_claims());
        assert_eq!(
            rs256.verify(Some(&bearer(&plain_hs256))),
            Err(AuthError::UnexpectedAlgorithm)
        );
        let rs256_token = rs256_token(&valid_claims());
        assert_eq!(
            hs256().verify(Some(&bearer(&rs256_token))),
            Err(AuthError::UnexpectedAlgorithm)
        );
    }

    #[test]
    fn keys_are_checked_when_configured() {
        assert!(matches!(
            Verifier::hs256("short", None, None),
            Err(AuthConfigError::WeakSecret)
        ));
        for pem in [
            "",
            "not a key",
            crate::auth::testkit::RSA_PRIVATE_PEM,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(
                matches!(
                    Verifier::rs256_pem(pem, None, None),
                    Err(AuthConfigError::InvalidPublicKey { .. })
                ),
                "{pem:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let debug = format!("{:?}", hs256());
        assert!(debug.contains("HS256"), "{debug}");
        assert!(!debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn error_messages_never_echo_the_token() {
        let token = hs256_token(SECRET_OTHER, &valid_claims());
        let error = hs256().verify(Some(&bearer(&token))).expect_err("bad signature");
        let problem = serde_json::to_string(&error.problem()).expect("serializable");
        assert!(!problem.contains(&token) && !error.challenge().contains(&token));
    }
}
