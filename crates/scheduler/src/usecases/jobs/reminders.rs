//! `booking-reminders`: a day before a confirmed booking starts, its customer and cleaner
//! are reminded, once. Taking a booking marks it reminded in the transaction that records
//! its reminders, so a run cut off anywhere reminds each booking at most once, and the
//! next run picks up whatever it did not reach.

use sqlx::PgPool;

use crate::domain::jobs::{Job, JobFuture, RunContext, RunReport};
use crate::{store::notifications as store, usecases::recording::notify_parties};

/// Bookings taken per transaction.
const BATCH: i64 = 500;

/// Reminds the parties of upcoming bookings.
pub struct BookingReminders {
    pool: PgPool,
    lead: chrono::Duration,
}

impl BookingReminders {
    /// Reminds bookings starting within `lead`, from the scheduler's own database.
    pub fn new(pool: PgPool, lead: chrono::Duration) -> Self {
        BookingReminders { pool, lead }
    }
}

impl Job for BookingReminders {
    fn run(&self, _context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let mut reminded = 0u64;
            loop {
                let mut transaction = self.pool.begin().await?;
                let until = chrono::Utc::now() + self.lead;
                let due = store::take_due_reminders(&mut transaction, until, BATCH).await?;
                for facts in &due {
                    notify_parties(&mut transaction, "booking.reminder", facts).await?;
                }
                transaction.commit().await?;
                reminded += due.len() as u64;
                if (due.len() as i64) < BATCH {
                    break;
                }
            }
            Ok(RunReport {
                items: reminded,
                detail: Some(format!("{reminded} bookings reminded")),
            })
        })
    }
}
