//! `spruce-gateway serve | openapi` (the latter prints the API's OpenAPI document, as
//! `/openapi.json` serves it), plus `healthcheck` and `check-config` (every binary has them).

use spruce_gateway::{
    settings::{DEFAULTS, Settings},
    startup::Application,
};
use spruce_platform::{cli, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(
        "spruce-gateway",
        DEFAULTS,
        |settings: Settings, command| async move {
            match command.as_deref() {
                None | Some("serve") => {
                    let drain = settings.common.http.drain;
                    let application = Application::build(settings).await?;
                    tracing::info!(port = application.port(), "spruce-gateway listening");
                    application
                        .run_until_stopped(shutdown::on_signal(drain))
                        .await
                }
                Some("openapi") => {
                    println!("{}", spruce_gateway::routes::document().to_pretty_json()?);
                    Ok(())
                }
                Some(other) => Err(cli::unknown_command(other, &["serve", "openapi"])),
            }
        },
    )
    .await
}
