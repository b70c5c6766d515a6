//! `spruce-core serve | migrate | seed [--scale N] | replay-unrouted`,
//! plus `healthcheck` and `check-config` (every binary has them).

use spruce_core::{
    seed,
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};
use spruce_platform::{bus, cli, db, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(
        "spruce-core",
        DEFAULTS,
        |settings: Settings, command| async move {
            match command.as_deref() {
                None | Some("serve") => {
                    let application = Application::build(settings).await?;
                    tracing::info!(
                        grpc_port = application.grpc_port(),
                        http_port = application.http_port(),
                        "spruce-core listening"
                    );
                    application.run_until_stopped(shutdown::on_signal()).await
                }
                Some("migrate") => db::migrate(&settings.database, MIGRATIONS).await,
                Some("seed") => {
                    let options: Vec<String> = std::env::args().skip(2).collect();
                    seed::run_command(&settings.database, &options).await
                }
                Some("replay-unrouted") => {
                    let moved = bus::replay_unrouted(&settings.bus).await?;
                    tracing::info!(moved, "unrouted events published again");
                    Ok(())
                }
                Some(other) => Err(cli::unknown_command(
                    other,
                    &["serve", "migrate", "seed [--scale N]", "replay-unrouted"],
                )),
            }
        },
    )
    .await
}
