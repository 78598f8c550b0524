//! Auth settings from the environment, and minting tokens for local use.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::verifier::check_secret;
use super::{is_scope_token, AuthConfigError, Verifier, STAFF_SCOPES, USER_SCOPES};
use crate::secret::{self, ExposeSecret, SecretSource, SecretString};

/// How bearer tokens are checked (`--help` lists these with their environment names). Exactly one
/// of the secret (inline or as a file) and the public key file must be set: it fixes the one
/// accepted algorithm.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Shared secret for HS256 tokens (at least 32 bytes); for local use, where `mint-token`
    /// signs with it too.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_parser = secret::parse)]
    pub jwt_secret: Option<SecretString>,

    /// File holding the HS256 secret instead (one trailing line break is ignored).
    #[arg(long, env = "JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// PEM file with the identity provider's RSA public key, for RS256 tokens.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Issuer every token must name (`iss`); unchecked when unset.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Audience every token must include (`aud`); unchecked when unset.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

impl AuthArgs {
    /// The verifier for the configured key: HS256 for a secret, RS256 for a public key file.
    /// Fails unless exactly one is set, or when the secret is too short or the file unreadable or
    /// not an RSA public key, so that a misconfigured service stops at start-up.
    pub fn verifier(&self) -> Result<Verifier, AuthConfigError> {
        let issuer = self.jwt_issuer.as_deref();
        let audience = self.jwt_audience.as_deref();
        match (self.secret()?, self.public_key_file()) {
            (Some(secret), None) => Verifier::hs256(secret.expose_secret(), issuer, audience),
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(path).map_err(|source| AuthConfigError::ReadPublicKey {
                    path: path.to_owned(),
                    source,
                })?;
                let origin = format!("the JWT public key file {}", path.display());
                Verifier::rs256_pem_from(&pem, &origin, issuer, audience)
            }
            (Some(_), Some(_)) => Err(AuthConfigError::BothKeys),
            (None, None) => Err(AuthConfigError::NoKey),
        }
    }

    /// The secret, inline or from its file; an empty one (`JWT_SECRET=` in a compose file)
    /// counting as unset.
    fn secret(&self) -> Result<Option<SecretString>, AuthConfigError> {
        let source = SecretSource {
            variable: "JWT_SECRET",
            value: self.jwt_secret.as_ref(),
            file_variable: "JWT_SECRET_FILE",
            file: self.jwt_secret_file.as_deref(),
        };
        Ok(source.read()?)
    }

    fn public_key_file(&self) -> Option<&Path> {
        self.jwt_public_key_file
            .as_deref()
            .filter(|path| !path.as_os_str().is_empty())
    }
}

/// Longest lifetime of a minted token: a day.
pub const MAX_MINT_TTL_SECONDS: u64 = 86_400;

/// The two kinds of caller a token can be minted for, each with its preset scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenKind {
    /// `orders:write purchases:write read webhooks:write`: acts on and reads only its own orders
    /// and purchases, and is notified of them through its own webhooks.
    User,
    /// `orders:manage purchases:refund read:all catalog:write`: moves, cancels and refunds anyone's
    /// orders and purchases, keeps the catalog, and reads everything.
    Staff,
}

impl TokenKind {
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::User => &USER_SCOPES,
            Self::Staff => &STAFF_SCOPES,
        }
    }
}

/// What `mint-token` puts in a token; issuer and audience come from [`AuthArgs`], so the token
/// passes the service's own checks.
#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    /// Subject (`sub`) of the token: the caller. A UUID is the user id itself; any other subject
    /// stands for the UUID v5 derived from it.
    #[arg(long, default_value = "local-dev")]
    pub subject: String,

    /// The kind of caller, granting its preset scopes.
    #[arg(long, value_enum, default_value_t = TokenKind::User)]
    pub kind: TokenKind,

    /// A scope to grant instead of the kind's presets; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,

    /// Lifetime of the token, in seconds; at most a day, so a leaked local token soon expires.
    #[arg(long, default_value_t = MAX_MINT_TTL_SECONDS, value_parser = clap::value_parser!(u64).range(1..=MAX_MINT_TTL_SECONDS))]
    pub ttl_seconds: u64,
}

/// An HS256 token for `args`, signed with the configured secret. Refuses when only a public key is
/// configured: such tokens come from the identity provider.
pub fn mint(args: &MintArgs, auth: &AuthArgs) -> Result<String, AuthConfigError> {
    let secret = match (auth.secret()?, auth.public_key_file()) {
        (Some(secret), None) => secret,
        (Some(_), Some(_)) => return Err(AuthConfigError::BothKeys),
        (None, _) => return Err(AuthConfigError::MintNeedsSecret),
    };
    let scopes: Vec<&str> = if args.scopes.is_empty() {
        args.kind.scopes().to_vec()
    } else {
        args.scopes.iter().map(String::as_str).collect()
    };
    mint_hs256(
        secret.expose_secret(),
        &args.subject,
        &scopes,
        Duration::from_secs(args.ttl_seconds),
        auth.jwt_issuer.as_deref(),
        auth.jwt_audience.as_deref(),
    )
}

/// An HS256 token for `subject` with `scopes` (as the space-separated `scope` claim), issued now
/// by the system clock and expiring after `ttl` (one second to [`MAX_MINT_TTL_SECONDS`]); `iss`
/// and `aud` when given and not empty.
pub fn mint_hs256(
    secret: &str,
    subject: &str,
    scopes: &[&str],
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, AuthConfigError> {
    check_secret(secret)?;
    if subject.is_empty() {
        return Err(AuthConfigError::EmptySubject);
    }
    if let Some(invalid) = scopes.iter().find(|scope| !is_scope_token(scope)) {
        return Err(AuthConfigError::InvalidScope((*invalid).to_owned()));
    }
    if ttl.as_secs() == 0 || ttl.as_secs() > MAX_MINT_TTL_SECONDS {
        return Err(AuthConfigError::InvalidTtl);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuthConfigError::ClockBeforeEpoch)?
        .as_secs();
    let exp = now.checked_add(ttl.as_secs()).ok_or(AuthConfigError::InvalidTtl)?;
    let claims = MintedClaims {
        sub: subject,
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        iat: now,
        exp,
        iss: issuer.filter(|issuer| !issuer.is_empty()),
        aud: audience.filter(|audience| !audience.is_empty()),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(AuthConfigError::Signing)
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::auth::testkit::{RSA_PUBLIC_PEM, SECRET};
    use crate::auth::{
        Claims, CATALOG_WRITE, OPERATOR, ORDERS_MANAGE, ORDERS_WRITE, PURCHASES_REFUND, PURCHASES_WRITE, READ,
        READ_ALL, WEBHOOKS_WRITE,
    };
    use crate::secret::SecretError;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        mint: MintArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied())).expect("valid arguments")
    }

    fn secret_args() -> AuthArgs {
        AuthArgs {
            jwt_secret: Some(SECRET.into()),
            jwt_secret_file: None,
            jwt_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
        }
    }

    /// Mints a token as `mint-token` would with `cli`, and verifies it with `auth`.
    fn minted_claims(cli: &Cli, auth: &AuthArgs) -> Claims {
        let token = mint(&cli.mint, auth).expect("minted");
        auth.verifier().expect("verifier").verify_token(&token).expect("valid")
    }

    #[test]
    fn minted_tokens_pass_the_configured_verifier() {
        let mut auth = secret_args();
        auth.jwt_issuer = Some("local".to_owned());
        auth.jwt_audience = Some("orderstream".to_owned());
        let cli = parse(&[]);
        assert_eq!(cli.mint.subject, "local-dev");
        assert_eq!(cli.mint.ttl_seconds, 86_400);
        let claims = minted_claims(&cli, &auth);
        assert_eq!(claims.sub, "local-dev");
        assert_eq!(
            claims.scopes,
            vec![ORDERS_WRITE, PURCHASES_WRITE, READ, WEBHOOKS_WRITE],
            "a user by default"
        );
        assert_eq!(claims.iss.as_deref(), Some("local"));
        assert_eq!(claims.aud, vec!["orderstream".to_owned()]);
        assert!(claims.exp >= claims.iat.unwrap_or(u64::MAX) + 86_400);
    }

    #[test]
    fn a_staff_token_carries_the_staff_scopes() {
        let cli = parse(&["--kind", "staff", "--subject", "operator-1"]);
        let claims = minted_claims(&cli, &secret_args());
        assert_eq!(
            claims.scopes,
            vec![ORDERS_MANAGE, PURCHASES_REFUND, READ_ALL, CATALOG_WRITE, OPERATOR]
        );
        assert_eq!(claims.user_id(), crate::auth::user_id_of("operator-1"));
        assert!(Cli::try_parse_from(["test", "--kind", "admin"]).is_err());
    }

    #[test]
    fn scopes_repeat_and_replace_the_default() {
        let cli = parse(&[
            "--subject",
            "alice",
            "--scope",
            "read",
            "--scope",
            "orders:write",
            "--ttl-seconds",
            "60",
        ]);
        let claims = minted_claims(&cli, &secret_args());
        assert_eq!(
            (claims.sub.as_str(), claims.scopes),
            ("alice", vec![READ.to_owned(), ORDERS_WRITE.to_owned()])
        );
        assert!(Cli::try_parse_from(["test", "--ttl-seconds", "0"]).is_err());
    }

    #[test]
    fn minting_refuses_what_could_not_be_verified() {
        let ttl = Duration::from_secs(60);
        assert!(matches!(
            mint_hs256("short", "u", &[], ttl, None, None),
            Err(AuthConfigError::WeakSecret)
        ));
        assert!(matches!(
            mint_hs256(SECRET, "", &[], ttl, None, None),
            Err(AuthConfigError::EmptySubject)
        ));
        assert!(matches!(
            mint_hs256(SECRET, "u", &["a b"], ttl, None, None),
            Err(AuthConfigError::InvalidScope(scope)) if scope == "a b"
        ));
        assert!(matches!(
            mint_hs256(SECRET, "u", &[], Duration::from_millis(10), None, None),
            Err(AuthConfigError::InvalidTtl)
        ));
        let token = mint_hs256(SECRET, "u", &[], ttl, None, None).expect("minted");
        let verifier = Verifier::hs256(SECRET, None, None).expect("verifier");
        assert_eq!(verifier.verify_token(&token).map(|claims| claims.scopes), Ok(vec![]));
    }

    #[test]
    fn exactly_one_key_must_be_configured() {
        let neither = AuthArgs {
            jwt_secret: None,
            ..secret_args()
        };
        assert!(matches!(neither.verifier(), Err(AuthConfigError::NoKey)));
        let empty = AuthArgs {
            jwt_secret: Some(SecretString::default()),
            jwt_public_key_file: Some(PathBuf::new()),
            ..secret_args()
        };
        assert!(matches!(empty.verifier(), Err(AuthConfigError::NoKey)));
        let both = AuthArgs {
            jwt_public_key_file: Some(PathBuf::from("/nonexistent.pem")),
            ..secret_args()
        };
        assert!(matches!(both.verifier(), Err(AuthConfigError::BothKeys)));
        let missing_file = AuthArgs {
            jwt_secret: None,
            ..both.clone()
        };
        let error = missing_file.verifier().expect_err("unreadable");
        assert!(matches!(error, AuthConfigError::ReadPublicKey { .. }));
        assert!(error.to_string().contains("/nonexistent.pem"), "{error}");
        let args = MintArgs {
            subject: "u".to_owned(),
            kind: TokenKind::User,
            scopes: vec![],
            ttl_seconds: 60,
        };
        assert!(matches!(
            mint(&args, &missing_file),
            Err(AuthConfigError::MintNeedsSecret)
        ));
        assert!(matches!(mint(&args, &both), Err(AuthConfigError::BothKeys)));
    }

    #[test]
    fn a_public_key_file_gives_an_rs256_verifier() {
        let path = std::env::temp_dir().join(format!("orderstream-auth-test-{}.pem", std::process::id()));
        std::fs::write(&path, RSA_PUBLIC_PEM).expect("temp file");
        let args = AuthArgs {
            jwt_secret: None,
            jwt_secret_file: None,
            jwt_public_key_file: Some(path.clone()),
            jwt_issuer: None,
            jwt_audience: None,
        };
        let verifier = args.verifier();
        std::fs::write(&path, "not a key").expect("temp file");
        let invalid = args.verifier();
        let _ = std::fs::remove_file(&path);
        assert_eq!(verifier.expect("RS256 verifier").algorithm(), Algorithm::RS256);
        let error = invalid.expect_err("not a key");
        assert!(matches!(error, AuthConfigError::InvalidPublicKey { .. }));
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        // Minting needs the secret, even with a verifier at hand.
        let token = mint(
            &MintArgs {
                subject: "u".to_owned(),
                kind: TokenKind::User,
                scopes: vec![],
                ttl_seconds: 60,
            },
            &args,
        );
        assert!(matches!(token, Err(AuthConfigError::MintNeedsSecret)));
    }

    #[test]
    fn the_secret_is_redacted() {
        let debug = format!("{:?}", secret_args());
        assert!(debug.contains("REDACTED") && !debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn the_secret_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("orderstream-jwt-secret-{}", std::process::id()));
        std::fs::write(&path, format!("{SECRET}\n")).expect("temp file");
        let from_file = AuthArgs {
            jwt_secret: None,
            jwt_secret_file: Some(path.clone()),
            ..secret_args()
        };
        let token = mint(&parse(&[]).mint, &from_file);
        let both = AuthArgs {
            jwt_secret_file: Some(path.clone()),
            ..secret_args()
        };
        let both = both.verifier();
        let _ = std::fs::remove_file(&path);
        // Signed with the file's secret, less its line break: the inline secret verifies it.
        let claims = secret_args()
            .verifier()
            .expect("verifier")
            .verify_token(&token.expect("minted"))
            .expect("valid");
        assert_eq!(claims.sub, "local-dev");
        assert!(matches!(both, Err(AuthConfigError::Secret(SecretError::Both { .. }))));
        let unreadable = AuthArgs {
            jwt_secret: None,
            jwt_secret_file: Some(path),
            ..secret_args()
        };
        assert!(matches!(
            unreadable.verifier(),
            Err(AuthConfigError::Secret(SecretError::ReadFile { .. }))
        ));
    }

    #[test]
    fn minted_lifetimes_are_capped_at_a_day() {
        assert!(Cli::try_parse_from(["test", "--ttl-seconds", "86400"]).is_ok());
        assert!(Cli::try_parse_from(["test", "--ttl-seconds", "86401"]).is_err());
        assert!(matches!(
            mint_hs256(SECRET, "u", &[], Duration::from_secs(86_401), None, None),
            Err(AuthConfigError::InvalidTtl)
        ));
    }
}
