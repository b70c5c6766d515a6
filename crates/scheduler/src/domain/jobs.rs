//! Clock jobs: what a job is, its names, and its runs.

use std::{collections::BTreeMap, future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Reminds customers and cleaners a day before a booking.
pub const BOOKING_REMINDERS: &str = "booking-reminders";
/// Cancels bookings nobody confirmed in time.
pub const EXPIRE_UNCONFIRMED: &str = "expire-unconfirmed";
/// Gives open bookings a cleaner with the matching engine.
pub const AUTO_ASSIGN: &str = "auto-assign";
/// Retrains search's duration model.
pub const RETRAIN_DURATION_MODEL: &str = "retrain-duration-model";
/// Writes every event waiting for the analytics archive now.
pub const EXPORT_ANALYTICS: &str = "export-analytics";
/// Every clock job, by name.
pub const JOB_NAMES: &[&str] = &[
    BOOKING_REMINDERS,
    EXPIRE_UNCONFIRMED,
    AUTO_ASSIGN,
    RETRAIN_DURATION_MODEL,
    EXPORT_ANALYTICS,
];

/// What a job did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// How many things it processed (bookings reminded, cancelled, assigned, ...).
    pub items: u64,
    /// One line for the run history, e.g. "model version 4 promoted".
    pub detail: Option<String>,
}

/// What a manual run was asked to do differently, by name.
pub type Options = BTreeMap<String, String>;

/// The run a job is asked to do.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: Uuid,
    /// The tick it runs for (a manual run's tick is when it was asked for).
    pub tick: DateTime<Utc>,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// A manual run's options (checked by [`Job::check_options`] when it was queued).
    pub options: Options,
}

/// A boxed run, so jobs can be chosen at run time.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<RunReport>> + Send + 'a>>;

/// A clock job. A run may be cut off at any point (a replica dies) and then runs again in a
/// later tick, so every run must be safe to repeat: each item's effect happens once.
pub trait Job: Send + Sync {
    /// Does one run.
    fn run(&self, context: RunContext) -> JobFuture<'_>;

    /// Checks a manual run's options before it is queued; most jobs take none.
    ///
    /// # Errors
    /// Says what is wrong, for the admin who asked.
    fn check_options(&self, options: &Options) -> Result<(), String> {
        match options.keys().next() {
            None => Ok(()),
            Some(name) => Err(format!("this job takes no options (got {name:?})")),
        }
    }
}

/// How a run came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A manual run waiting for a replica.
    Queued,
    Running,
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// Its replica died or stopped mid-run.
    Abandoned,
}

macro_rules! spelled {
    ($type:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $type {
            /// Returns the stored and wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $text),*
                }
            }
        }

        impl std::str::FromStr for $type {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($type::$variant),)*
                    other => Err(format!(
                        "{other:?} is not a {}",
                        stringify!($type).to_lowercase()
                    )),
                }
            }
        }
    };
}

spelled!(Trigger { Schedule => "schedule", Manual => "manual" });
spelled!(Outcome {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Abandoned => "abandoned",
});

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: Uuid,
    pub job: String,
    pub trigger: Trigger,
    pub tick: DateTime<Utc>,
    /// The replica that ran it (none while queued).
    pub replica: Option<String>,
    pub outcome: Outcome,
    pub attempts: u32,
    pub error: Option<String>,
    pub items: u64,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub options: Options,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for outcome in [
            Outcome::Queued,
            Outcome::Running,
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Abandoned,
        ] {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!("manual".parse::<Trigger>(), Ok(Trigger::Manual));
        assert!(
            "sometimes"
                .parse::<Trigger>()
                .unwrap_err()
                .contains("trigger")
        );
    }
}
