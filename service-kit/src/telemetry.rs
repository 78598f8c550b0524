//! Structured logging.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber: `RUST_LOG` filters (default `info`, sqlx at `warn`), and `LOG_FORMAT=json`
/// switches to one JSON object per line for log shippers. Colours only on a terminal, so log
/// files stay plain. Safe to call more than once.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let on_terminal = std::io::stdout().is_terminal();
    let builder = fmt().with_env_filter(filter).with_target(true).with_ansi(on_terminal);
    let _already_installed = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
