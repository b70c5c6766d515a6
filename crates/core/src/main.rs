//! `spruce-core serve | migrate | seed [--scale N] [--password-file PATH] | replay-unrouted`,
//! plus `healthcheck` and `check-config` (every binary has them).

use spruce_core::{
    seed,
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};
use spruce_platform::cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The data set needs the database alone (the e2e seed Job holds no other secret).
    if std::env::args().nth(1).as_deref() == Some("seed") {
        let options: Vec<String> = std::env::args().skip(2).collect();
        return cli::with_database("spruce-core", DEFAULTS, |database| async move {
            seed::run_command(&database, &options).await
        })
        .await;
    }
    if cli::command().as_deref() == Some("migrate") {
        return spruce_db::migrate_command("spruce-core", DEFAULTS, MIGRATIONS).await;
    }
    cli::run(
        "spruce-core",
        DEFAULTS,
        |settings: Settings, command| async move {
            match command.as_deref() {
                None | Some("serve") => cli::serve::<Application>("spruce-core", settings).await,
                Some("replay-unrouted") => {
                    let moved = spruce_bus::replay_unrouted(&settings.bus).await?;
                    tracing::info!(moved, "unrouted events published again");
                    Ok(())
                }
                Some(other) => Err(cli::unknown_command(
                    other,
                    &[
                        "serve",
                        "migrate",
                        "seed [--scale N] [--password-file PATH]",
                        "replay-unrouted",
                    ],
                )),
            }
        },
    )
    .await
}
