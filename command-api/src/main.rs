use clap::Parser;
use command_api::{Application, Config};
use service_kit::auth::{AuthArgs, MintArgs};

/// `command-api mint-token`: a bearer token signed with the local HS256 secret, for local use.
#[derive(Debug, Parser)]
#[command(
    name = "command-api mint-token",
    about = "Mint a bearer token for local use (HS256 secret only)"
)]
struct MintToken {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    mint: MintArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    let mut args = std::env::args();
    if std::env::args().nth(1).as_deref() == Some("mint-token") {
        let program = args.next().unwrap_or_default();
        let token = MintToken::parse_from(std::iter::once(program).chain(args.skip(1)));
        println!("{}", service_kit::auth::mint(&token.mint, &token.auth)?);
        return Ok(());
    }
    let app = Application::build(Config::parse()).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
