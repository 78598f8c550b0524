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
    Serve(Box<Config>),
    /// Mint a bearer token for local use (HS256 secret only).
    MintToken {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        mint: MintArgs,
    },
}

fn main() -> anyhow::Result<()> {
    service_kit::server::run_main("command-api", || run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match cli.command {
        Some(Command::MintToken { auth, mint }) => {
            println!("{}", service_kit::auth::mint(&mint, &auth)?);
            return Ok(());
        }
        Some(Command::Serve(config)) => *config,
        None => cli.serve,
    };
    service_kit::server::run::<Application>(config).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("command-api").chain(args.iter().copied()))
    }

    #[test]
    fn without_a_subcommand_it_serves_with_the_flags_given() {
        Cli::command().debug_assert();
        let cli = parse(&["--listen-addr", "0.0.0.0:9000"]).expect("parses");
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen_addr, "0.0.0.0:9000");
        let Some(Command::Serve(config)) = parse(&["serve", "--listen-addr", "0.0.0.0:9001"])
            .expect("parses")
            .command
        else {
            panic!("not serve");
        };
        assert_eq!(config.listen_addr, "0.0.0.0:9001");
    }

    #[test]
    fn mint_token_takes_its_own_flags_only() {
        let cli = parse(&["mint-token", "--subject", "me"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::MintToken { .. })));
        assert!(parse(&["--listen-addr", "0.0.0.0:9000", "mint-token"]).is_err());
    }
}
