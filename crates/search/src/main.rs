//! `spruce-search serve | migrate`,
//! plus `healthcheck` and `check-config` (every binary has them).

use spruce_platform::cli;
use spruce_search::{
    settings::{DEFAULTS, Settings},
    startup::Application,
    store::MIGRATIONS,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if cli::command().as_deref() == Some("migrate") {
        return spruce_db::migrate_command("spruce-search", DEFAULTS, MIGRATIONS).await;
    }
    cli::run(
        "spruce-search",
        DEFAULTS,
        |settings: Settings, command| async move {
            match command.as_deref() {
                None | Some("serve") => cli::serve::<Application>("spruce-search", settings).await,
                Some(other) => Err(cli::unknown_command(other, &["serve", "migrate"])),
            }
        },
    )
    .await
}
