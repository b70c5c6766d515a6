//! `spruce-core serve | migrate`.

use spruce_core::{
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};
use spruce_platform::{settings, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = settings::load(DEFAULTS)?;
    let telemetry = telemetry::init("spruce-core", &settings.telemetry)?;
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let application = Application::build(settings).await?;
            tracing::info!(
                grpc_port = application.grpc_port(),
                http_port = application.http_port(),
                "spruce-core listening"
            );
            application.run_until_stopped(shutdown::on_signal()).await
        }
        Some("migrate") => spruce_platform::db::migrate(&settings.database, MIGRATIONS).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected serve or migrate"
        )),
    };
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "spruce-core stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
