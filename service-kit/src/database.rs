//! PostgreSQL settings shared by the projectors and the query API.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use thiserror::Error;

use crate::secret::{self, ExposeSecret, SecretError, SecretSource, SecretString};

/// How long the one direct attempt of [`DatabaseArgs::why_unreachable`] may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the read models live (`--help` lists these with their environment names). The URL
/// carries the password, so it is a secret: no default, never in `Debug`.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL (`postgres://user:password@host:port/database`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = secret::parse)]
    pub database_url: Option<SecretString>,

    /// File holding the connection URL instead (one trailing line break is ignored).
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// Schema holding the read models; several stacks can share one database under different schemas.
    #[arg(long, env = "DATABASE_SCHEMA", default_value = "public")]
    pub database_schema: String,

    /// Most connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub database_max_connections: u32,
}

/// Why the database settings cannot be used; reported at start-up.
#[derive(Debug, Error)]
pub enum DatabaseConfigError {
    #[error(transparent)]
    Url(#[from] SecretError),
    /// The URL does not parse; the message is sqlx's, which does not repeat the URL.
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// sqlx reads any scheme as PostgreSQL's; a URL meant for another database would only fail
    /// later, at its first connection. The scheme is all that is repeated of the URL.
    #[error("DATABASE_URL must start with `postgres://` or `postgresql://`, not `{scheme}://`")]
    WrongScheme { scheme: String },
}

impl DatabaseArgs {
    /// Settings for `url` with the other settings at their defaults.
    pub fn new(url: impl Into<String>, schema: impl Into<String>) -> Self {
        Self {
            database_url: Some(SecretString::from(url.into())),
            database_url_file: None,
            database_schema: schema.into(),
            database_max_connections: 8,
        }
    }

    /// The connection URL, inline or from its file.
    pub fn url(&self) -> Result<SecretString, DatabaseConfigError> {
        let source = SecretSource {
            variable: "DATABASE_URL",
            value: self.database_url.as_ref(),
            file_variable: "DATABASE_URL_FILE",
            file: self.database_url_file.as_deref(),
        };
        Ok(source.require()?)
    }

    /// Connection options for the URL, without the schema.
    pub fn connect_options(&self) -> Result<PgConnectOptions, DatabaseConfigError> {
        let url = self.url()?;
        let url = url.expose_secret();
        if let Some((scheme, _)) = url.split_once("://") {
            if !matches!(scheme, "postgres" | "postgresql") {
                return Err(DatabaseConfigError::WrongScheme {
                    scheme: scheme.chars().take(32).collect(),
                });
            }
        }
        url.parse().map_err(DatabaseConfigError::InvalidUrl)
    }

    /// A lazily connecting pool: the service starts even while PostgreSQL is down, and each
    /// connection resolves names in the configured schema first.
    pub fn pool(&self) -> Result<PgPool, DatabaseConfigError> {
        let options = self
            .connect_options()?
            .options([("search_path", self.database_schema.as_str())]);
        Ok(PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options))
    }

    /// Why no connection to PostgreSQL can be opened right now, naming the host and port, from
    /// one direct attempt; `None` when one can. sqlx's pool retries a server that refuses or
    /// cannot be resolved until its acquire timeout, then reports only that it timed out (sqlx
    /// issue 3808): this says what that hid. Never names the password.
    pub async fn why_unreachable(&self) -> Option<String> {
        let options = match self.connect_options() {
            Ok(options) => options,
            Err(error) => return Some(error.to_string()),
        };
        let server = format!("PostgreSQL at {}:{}", options.get_host(), options.get_port());
        match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                None
            }
            Ok(Err(error)) => Some(format!("{server} cannot be reached: {error}")),
            Err(_) => Some(format!("{server} did not answer within {PROBE_TIMEOUT:?}")),
        }
    }

    /// `error`, with why PostgreSQL cannot be reached put first when the pool gave up without
    /// saying (`PoolTimedOut`): what a command run by hand reports.
    pub async fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let timed_out = error
            .chain()
            .any(|cause| matches!(cause.downcast_ref(), Some(sqlx::Error::PoolTimedOut)));
        if !timed_out {
            return error;
        }
        match self.why_unreachable().await {
            Some(reason) => error.context(reason),
            None => error,
        }
    }

    /// Logs, once and without holding the start up, why PostgreSQL cannot be reached if it
    /// cannot: a service retries a lazy pool in silence otherwise, with only "pool timed out".
    pub fn warn_if_unreachable(&self) {
        let database = self.clone();
        tokio::spawn(async move {
            if let Some(reason) = database.why_unreachable().await {
                tracing::warn!(%reason, "PostgreSQL cannot be reached yet; retrying");
            }
        });
    }
}

/// Whether `error` is a statement given up on after `lock_timeout` (SQLSTATE `55P03`).
pub fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "55P03")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        database: DatabaseArgs,
    }

    const URL: &str = "postgres://reader:s3cret-pw@db.internal:5432/orders";

    #[test]
    fn there_is_no_default_url() {
        let command = <Cli as clap::CommandFactory>::command();
        let url = command
            .get_arguments()
            .find(|arg| arg.get_id() == "database_url")
            .expect("the URL setting");
        assert!(url.get_default_values().is_empty());
        let unset = DatabaseArgs {
            database_url: None,
            ..DatabaseArgs::new(URL, "public")
        };
        assert!(matches!(
            unset.url(),
            Err(DatabaseConfigError::Url(SecretError::Missing { .. }))
        ));
    }

    #[test]
    fn the_url_comes_inline_or_from_a_file_and_never_shows_in_debug() {
        let inline = DatabaseArgs::new(URL, "public");
        assert_eq!(inline.url().expect("url").expose_secret(), URL);
        assert_eq!(inline.connect_options().expect("valid").get_host(), "db.internal");
        let debug = format!("{inline:?}");
        assert!(!debug.contains("s3cret-pw") && !debug.contains("reader"), "{debug}");

        let path = std::env::temp_dir().join(format!("orderstream-database-url-{}", std::process::id()));
        std::fs::write(&path, format!("{URL}\n")).expect("temp file");
        let from_file = Cli::try_parse_from(["test", "--database-url-file", path.to_str().expect("utf-8")])
            .map(|cli| DatabaseArgs {
                database_url: None,
                ..cli.database
            })
            .expect("parses");
        let url = from_file.url();
        let _ = std::fs::remove_file(&path);
        assert_eq!(url.expect("url from the file").expose_secret(), URL);
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_it() {
        let error = DatabaseArgs::new("postgres://u:topsecret@h:port/db", "public")
            .pool()
            .expect_err("not a port");
        assert!(matches!(error, DatabaseConfigError::InvalidUrl(_)));
        assert!(!error.to_string().contains("topsecret"), "{error}");
        let mysql = DatabaseArgs::new("mysql://u:topsecret@h/db", "public")
            .pool()
            .expect_err("not PostgreSQL");
        assert_eq!(
            mysql.to_string(),
            "DATABASE_URL must start with `postgres://` or `postgresql://`, not `mysql://`"
        );
        assert!(DatabaseArgs::new("postgresql://u:p@h/db", "public")
            .connect_options()
            .is_ok());
    }
}
