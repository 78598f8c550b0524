use clap::Parser;
use query_api::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("query-api");
    let served = serve(Config::parse()).await;
    telemetry.shutdown().await;
    served
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
