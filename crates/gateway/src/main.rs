//! `spruce-gateway serve`.

use spruce_gateway::{
    settings::{DEFAULTS, Settings},
    startup::Application,
};
use spruce_platform::{settings, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = settings::load(DEFAULTS)?;
    let telemetry = telemetry::init("spruce-gateway", &settings.telemetry)?;
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => match Application::build(settings).await {
            Ok(application) => {
                tracing::info!(port = application.port(), "spruce-gateway listening");
                application.run_until_stopped(shutdown::on_signal()).await
            }
            Err(error) => Err(error),
        },
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}; expected serve")),
    };
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "spruce-gateway stopped with an error"
        );
    }
    telemetry.shutdown();
    result
}
