//! `spruce-scheduler serve | migrate | replay-parked | solve FILE`,
//! plus `healthcheck` and `check-config` (every binary has them), and `write-archive`,
//! which `serve` starts to write the analytics archive's files.

use anyhow::Context as _;
use spruce_platform::cli;
use spruce_scheduler::{
    domain::matching::solver::{Costs, solve},
    settings::{DEFAULTS, Settings},
    startup::{self, Application},
    store::MIGRATIONS,
    usecases::archive::{EVERYTHING, FileWriter, WRITE_ARCHIVE},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if cli::command().as_deref() == Some("migrate") {
        return spruce_db::migrate_command("spruce-scheduler", DEFAULTS, MIGRATIONS).await;
    }
    cli::run(
        "spruce-scheduler",
        DEFAULTS,
        |mut settings: Settings, command| async move {
            match command.as_deref() {
                None | Some("serve") => {
                    let program = std::env::current_exe()
                        .context("failed to find the scheduler's own binary")?;
                    settings.analytics.writer = FileWriter::ChildProcess(program);
                    cli::serve::<Application>("spruce-scheduler", settings).await
                }
                Some(WRITE_ARCHIVE) => {
                    let everything = match std::env::args().nth(2).as_deref() {
                        None => false,
                        Some(EVERYTHING) => true,
                        Some(other) => anyhow::bail!(
                            "unknown argument {other:?}; usage: spruce-scheduler \
                             {WRITE_ARCHIVE} [{EVERYTHING}]"
                        ),
                    };
                    startup::write_archive(settings, everything).await
                }
                Some("replay-parked") => {
                    let moved = spruce_bus::replay_parked(&settings.bus).await?;
                    tracing::info!(moved, "parked events moved back to the main queue");
                    Ok(())
                }
                Some("solve") => solve_file(std::env::args().nth(2)),
                Some(other) => Err(cli::unknown_command(
                    other,
                    &["serve", "migrate", "replay-parked", "solve", WRITE_ARCHIVE],
                )),
            }
        },
    )
    .await
}

/// `solve FILE`: the optimal assignment of the CSV cost matrix in FILE (rows by columns, an
/// empty cell for a forbidden pair), so the engine can be compared with other solvers.
fn solve_file(path: Option<String>) -> anyhow::Result<()> {
    let path = path.context("usage: spruce-scheduler solve FILE (a CSV cost matrix)")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let costs = Costs::from_csv(&text).with_context(|| format!("{path} is not a cost matrix"))?;
    let started = std::time::Instant::now();
    let assignment = solve(&costs);
    let elapsed = started.elapsed();
    println!("total_cost {}", assignment.total_cost);
    println!(
        "assigned {} of {} rows ({} columns, {} allowed pairs)",
        costs.rows() - assignment.unassigned(),
        costs.rows(),
        costs.columns(),
        costs.pairs()
    );
    println!("solve_time_ms {:.3}", elapsed.as_secs_f64() * 1_000.0);
    println!("row,column");
    print!("{assignment}");
    Ok(())
}
