//! `spruce-scheduler serve | migrate | replay-parked`.

use spruce_platform::{bus, db, settings, shutdown, telemetry};
use spruce_scheduler::{
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = settings::load(DEFAULTS)?;
    let telemetry = telemetry::init("spruce-scheduler", &settings.telemetry)?;
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let application = Application::build(settings).await?;
            tracing::info!(
                grpc_port = application.grpc_port(),
                http_port = application.http_port(),
                "spruce-scheduler listening"
            );
            application.run_until_stopped(shutdown::on_signal()).await
        }
        Some("migrate") => db::migrate(&settings.database, MIGRATIONS).await,
        Some("replay-parked") => bus::replay_parked(&settings.bus).await.map(|moved| {
            tracing::info!(moved, "parked events moved back to the main queue");
        }),
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected serve, migrate or replay-parked"
        )),
    };
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "spruce-scheduler stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
