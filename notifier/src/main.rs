use clap::Parser;
use notifier::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    let app = Application::build(Config::parse()).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
