use clap::Parser;
use notifier::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::run("notifier", || serve(Config::parse())).await
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
