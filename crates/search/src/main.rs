//! `spruce-search serve | migrate`.

use spruce_platform::{db, settings, shutdown, telemetry};
use spruce_search::{
    settings::{DEFAULTS, Settings},
    startup::{Application, MIGRATIONS},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = settings::load(DEFAULTS)?;
    let telemetry = telemetry::init("spruce-search", &settings.telemetry)?;
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let application = Application::build(settings).await?;
            tracing::info!(
                grpc_port = application.grpc_port(),
                http_port = application.http_port(),
                "spruce-search listening"
            );
            application.run_until_stopped(shutdown::on_signal()).await
        }
        Some("migrate") => db::migrate(&settings.database, MIGRATIONS).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected serve or migrate"
        )),
    };
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "spruce-search stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
