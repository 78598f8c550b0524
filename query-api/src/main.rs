fn main() -> anyhow::Result<()> {
    service_kit::server::main::<query_api::Application>("query-api")
}
