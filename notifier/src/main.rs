fn main() -> anyhow::Result<()> {
    service_kit::server::main::<notifier::Application>("notifier")
}
