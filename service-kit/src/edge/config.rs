//! The edge settings, one clap struct every API flattens into its configuration, and the
//! settings the APIs over the read models share.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use clap::Args;
use thiserror::Error;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::auth::AuthArgs;
use crate::database::DatabaseArgs;
use crate::duration;

const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
const DEFAULT_REQUEST_TIMEOUT: &str = "30s";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
const DEFAULT_RATE_LIMIT_PER_SECOND: f64 = 10_000.0;
const DEFAULT_RATE_LIMIT_BURST: u32 = 20_000;
const DEFAULT_CORS_ALLOWED_METHODS: &str = "GET,POST";
const DEFAULT_CORS_ALLOWED_HEADERS: &str =
    "authorization,content-type,idempotency-key,if-match,x-consistency-token,x-request-id";
const DEFAULT_CORS_EXPOSED_HEADERS: &str = "x-request-id,retry-after,ratelimit,ratelimit-policy,etag,location";
const DEFAULT_CORS_MAX_AGE_SECONDS: u64 = 600;

/// What an HTTP API over the read models takes besides its address (whose default is the
/// service's own): its edge, its database and how its bearer tokens are checked.
#[derive(Debug, Clone, Args)]
pub struct DatabaseApiArgs {
    #[command(flatten)]
    pub edge: EdgeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Limits and cross-origin rules of an HTTP API (`--help` lists these with their environment
/// names). The defaults stay far above what the benchmark sends, so only abuse meets them.
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// How long a client may take to send a request line and headers (`10s`, `500ms`); also how
    /// long an idle keep-alive connection stays open.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = DEFAULT_HEADER_READ_TIMEOUT, value_parser = duration::positive)]
    pub header_read_timeout: Duration,

    /// Deprecated: HEADER_READ_TIMEOUT in milliseconds.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", conflicts_with = "header_read_timeout", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: Option<u64>,

    /// Longest time for a whole request, reading its body and handling it (`30s`); past it the
    /// answer is 408 and the connection is closed.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = DEFAULT_REQUEST_TIMEOUT, value_parser = duration::positive)]
    pub request_timeout: Duration,

    /// Deprecated: REQUEST_TIMEOUT in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", conflicts_with = "request_timeout", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: Option<u64>,

    /// Most API requests handled at once; further ones are answered 503 with `Retry-After` at
    /// once instead of queueing. 0 turns the cap off.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,

    /// Requests per second each caller (token subject, or client address without a valid token)
    /// may sustain; fractions allowed. 0 turns the rate limit off.
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = DEFAULT_RATE_LIMIT_PER_SECOND)]
    pub rate_limit_per_second: f64,

    /// Requests a caller may send at once before the sustained rate applies (the bucket size).
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = DEFAULT_RATE_LIMIT_BURST)]
    pub rate_limit_burst: u32,

    /// Origins browsers may call the API from, comma-separated (`https://app.example.com`), or
    /// `*` for any. Empty: no CORS headers, so only same-origin pages can call.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Methods allowed in cross-origin requests, comma-separated.
    #[arg(long, env = "CORS_ALLOWED_METHODS", value_delimiter = ',', default_value = DEFAULT_CORS_ALLOWED_METHODS)]
    pub cors_allowed_methods: Vec<String>,

    /// Request headers allowed in cross-origin requests, comma-separated.
    #[arg(long, env = "CORS_ALLOWED_HEADERS", value_delimiter = ',', default_value = DEFAULT_CORS_ALLOWED_HEADERS)]
    pub cors_allowed_headers: Vec<String>,

    /// Response headers a cross-origin page may read, comma-separated.
    #[arg(long, env = "CORS_EXPOSED_HEADERS", value_delimiter = ',', default_value = DEFAULT_CORS_EXPOSED_HEADERS)]
    pub cors_exposed_headers: Vec<String>,

    /// How long browsers may cache a preflight answer, in seconds.
    #[arg(long, env = "CORS_MAX_AGE_SECONDS", default_value_t = DEFAULT_CORS_MAX_AGE_SECONDS)]
    pub cors_max_age_seconds: u64,
}

/// The documented defaults, for services built in code (tests) rather than from the environment.
impl Default for EdgeArgs {
    fn default() -> Self {
        let list = |text: &str| text.split(',').map(str::to_owned).collect();
        Self {
            header_read_timeout: duration::parse(DEFAULT_HEADER_READ_TIMEOUT).expect("a duration"),
            header_read_timeout_ms: None,
            request_timeout: duration::parse(DEFAULT_REQUEST_TIMEOUT).expect("a duration"),
            request_timeout_ms: None,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            rate_limit_per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
            rate_limit_burst: DEFAULT_RATE_LIMIT_BURST,
            cors_allowed_origins: Vec::new(),
            cors_allowed_methods: list(DEFAULT_CORS_ALLOWED_METHODS),
            cors_allowed_headers: list(DEFAULT_CORS_ALLOWED_HEADERS),
            cors_exposed_headers: list(DEFAULT_CORS_EXPOSED_HEADERS),
            cors_max_age_seconds: DEFAULT_CORS_MAX_AGE_SECONDS,
        }
    }
}

/// Why the edge settings cannot be used; reported at start-up.
#[derive(Debug, Error)]
pub enum EdgeConfigError {
    #[error(
        "RATE_LIMIT_PER_SECOND must be a finite number, 0 or more; RATE_LIMIT_BURST at least 1 when it is above 0"
    )]
    InvalidRateLimit,
    /// Not `scheme://host[:port]`: browsers send exactly that, so anything else never matches.
    #[error("CORS_ALLOWED_ORIGINS: {0:?} is not an origin like `https://app.example.com` (no path, no trailing slash), nor `*` alone")]
    InvalidOrigin(String),
    #[error("CORS_ALLOWED_METHODS: {0:?} is not an HTTP method")]
    InvalidMethod(String),
    #[error("{setting}: {value:?} is not a header name")]
    InvalidHeader { setting: &'static str, value: String },
}

impl EdgeArgs {
    pub fn header_read_timeout(&self) -> Duration {
        duration::or_deprecated_ms(self.header_read_timeout, self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        duration::or_deprecated_ms(self.request_timeout, self.request_timeout_ms)
    }

    /// Every setting its parser cannot check alone, so that a mistake stops the service at
    /// start-up (a timeout of zero is refused as it is read).
    pub(crate) fn validate(&self) -> Result<(), EdgeConfigError> {
        let rate = self.rate_limit_per_second;
        if !rate.is_finite() || rate < 0.0 || (rate > 0.0 && self.rate_limit_burst == 0) {
            return Err(EdgeConfigError::InvalidRateLimit);
        }
        self.cors().map(drop)
    }

    /// The CORS layer, or `None` when no origin is allowed.
    pub(crate) fn cors(&self) -> Result<Option<CorsLayer>, EdgeConfigError> {
        let origins = entries(&self.cors_allowed_origins);
        if origins.is_empty() {
            return Ok(None);
        }
        let allow_origin = if origins == ["*"] {
            AllowOrigin::any()
        } else {
            let origins = origins
                .iter()
                .map(|origin| parse_origin(origin))
                .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(origins)
        };
        let methods = entries(&self.cors_allowed_methods)
            .into_iter()
            .map(|method| {
                Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| EdgeConfigError::InvalidMethod(method.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_headers = header_names("CORS_ALLOWED_HEADERS", &self.cors_allowed_headers)?;
        let exposed_headers = header_names("CORS_EXPOSED_HEADERS", &self.cors_exposed_headers)?;
        Ok(Some(
            CorsLayer::new()
                .allow_origin(allow_origin)
                .allow_methods(AllowMethods::list(methods))
                .allow_headers(AllowHeaders::list(allowed_headers))
                .expose_headers(ExposeHeaders::list(exposed_headers))
                .max_age(Duration::from_secs(self.cors_max_age_seconds)),
        ))
    }
}

/// The non-empty, trimmed entries of a comma-separated setting.
fn entries(values: &[String]) -> Vec<&str> {
    values
        .iter()
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
        .collect()
}

fn parse_origin(origin: &str) -> Result<HeaderValue, EdgeConfigError> {
    let invalid = || EdgeConfigError::InvalidOrigin(origin.to_owned());
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(invalid)?;
    if host.is_empty() || host.contains(['/', '?', '#', '*', ' ']) {
        return Err(invalid());
    }
    HeaderValue::from_str(origin).map_err(|_| invalid())
}

fn header_names(setting: &'static str, values: &[String]) -> Result<Vec<HeaderName>, EdgeConfigError> {
    entries(values)
        .into_iter()
        .map(|name| {
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| EdgeConfigError::InvalidHeader {
                setting,
                value: name.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::refused::assert_settings_refused;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        edge: EdgeArgs,
    }

    #[test]
    fn the_flags_default_to_what_default_says() {
        let parsed = Cli::try_parse_from(["test"]).expect("parses").edge;
        let default = EdgeArgs::default();
        // clap reads the environment too: compare only what it left at the defaults.
        let command = <Cli as clap::CommandFactory>::command();
        let from_env = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .any(|name| std::env::var_os(name).is_some());
        if !from_env {
            assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        }
        assert!(default.validate().is_ok());
        assert!(default.cors().expect("valid").is_none(), "CORS is off by default");
    }

    #[test]
    fn origins_are_checked_at_start_up() {
        let with_origins = |origins: &[&str]| EdgeArgs {
            cors_allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..EdgeArgs::default()
        };
        assert!(with_origins(&["https://app.example.com", " http://localhost:3000 "])
            .validate()
            .is_ok());
        assert!(with_origins(&["*"]).cors().expect("valid").is_some());
        for bad in [
            "https://app.example.com/",
            "app.example.com",
            "*.example.com",
            "https://*",
        ] {
            assert!(
                matches!(with_origins(&[bad]).validate(), Err(EdgeConfigError::InvalidOrigin(o)) if o == bad),
                "{bad}"
            );
        }
        assert!(matches!(
            with_origins(&["https://a.example", "*"]).validate(),
            Err(EdgeConfigError::InvalidOrigin(_))
        ));
        let bad_method = EdgeArgs {
            cors_allowed_methods: vec!["GET POST".to_owned()],
            ..with_origins(&["*"])
        };
        assert!(matches!(bad_method.validate(), Err(EdgeConfigError::InvalidMethod(_))));
    }

    #[test]
    fn limits_are_checked_at_start_up() {
        // A timeout of zero would refuse every request.
        assert_settings_refused::<EdgeArgs>(&[
            ("--request-timeout", "0s"),
            ("--request-timeout-ms", "0"),
            ("--header-read-timeout", "0ms"),
            ("--header-read-timeout-ms", "0"),
        ]);
        for (rate, burst) in [(f64::NAN, 1), (-1.0, 1), (5.0, 0)] {
            let args = EdgeArgs {
                rate_limit_per_second: rate,
                rate_limit_burst: burst,
                ..EdgeArgs::default()
            };
            assert!(
                matches!(args.validate(), Err(EdgeConfigError::InvalidRateLimit)),
                "{rate} {burst}"
            );
        }
        let off = EdgeArgs {
            rate_limit_per_second: 0.0,
            rate_limit_burst: 0,
            ..EdgeArgs::default()
        };
        assert!(off.validate().is_ok());
    }
}
