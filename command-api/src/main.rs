use clap::{Parser, Subcommand};
use command_api::{Application, Config};
use service_kit::auth::{AuthArgs, MintArgs};

/// `command-api [serve]` or `command-api mint-token`; without a subcommand it serves.
#[derive(Debug, Parser)]
#[command(
    name = "command-api",
    version,
    about = "orderstream's HTTP edge for commands and the exactly-once decider",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and run the decider (the default).
    Serve(Config),
    /// Mint a bearer token for local use (HS256 secret only).
    MintToken {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        mint: MintArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::MintToken { auth, mint }) => {
            println!("{}", service_kit::auth::mint(&mint, &auth)?);
            return Ok(());
        }
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    let app = Application::build(config).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
