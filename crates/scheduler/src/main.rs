//! `spruce-scheduler serve | migrate | replay-parked`,
//! plus `healthcheck` and `check-config` (every binary has them).

use spruce_platform::{bus, cli, db, shutdown};
use spruce_scheduler::{
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(
        "spruce-scheduler",
        DEFAULTS,
        |settings: Settings, command| async move {
            match command.as_deref() {
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
                Some("replay-parked") => {
                    let moved = bus::replay_parked(&settings.bus).await?;
                    tracing::info!(moved, "parked events moved back to the main queue");
                    Ok(())
                }
                Some(other) => Err(cli::unknown_command(
                    other,
                    &["serve", "migrate", "replay-parked"],
                )),
            }
        },
    )
    .await
}
