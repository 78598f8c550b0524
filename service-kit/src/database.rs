//! PostgreSQL settings shared by the projectors and the query API.

use std::time::Duration;

use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// Where the read models live (`--help` lists these with their environment names).
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://orderstream:orderstream@127.0.0.1:5432/orderstream",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Schema holding the read models; several stacks can share one database under different schemas.
    #[arg(long, env = "DATABASE_SCHEMA", default_value = "public")]
    pub database_schema: String,

    /// Most connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    /// A lazily connecting pool: the service starts even while PostgreSQL is down, and each
    /// connection resolves names in the configured schema first.
    pub fn pool(&self) -> Result<PgPool, sqlx::Error> {
        let options: PgConnectOptions = self.database_url.parse()?;
        let options = options.options([("search_path", self.database_schema.as_str())]);
        Ok(PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options))
    }
}
