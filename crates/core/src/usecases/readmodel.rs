//! What other services load their read models from: every cleaner as of one consistent
//! moment, for services only.

use futures_util::StreamExt as _;
use spruce_platform::identity::Principal;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::{domain::cleaner::CleanerState, error::CoreError, store::cleaners};

/// Cleaners per message.
const BATCH: usize = 500;

/// Batches in flight between the database and a slow reader; the database cursor waits
/// while they are full, so memory stays bounded whatever the number of cleaners.
const STREAM_BUFFER: usize = 4;

/// What the cleaner stream carries: batches of cleaners, or the error that ended it.
pub type CleanerBatches = mpsc::Receiver<Result<Vec<CleanerState>, CoreError>>;

/// The read-model use cases.
#[derive(Clone)]
pub struct ReadModels {
    pool: PgPool,
}

impl ReadModels {
    /// Creates the use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        ReadModels { pool }
    }

    /// Starts streaming every cleaner with a profile and their live bookings from one
    /// REPEATABLE READ snapshot. Only services may ask (which ones, the authentication
    /// layer decides per RPC). The stream ends early when the receiver goes away.
    ///
    /// # Errors
    /// PermissionDenied for a user; a database failure arrives as the stream's last item.
    pub fn stream_cleaners(
        &self,
        principal: Option<&Principal>,
    ) -> Result<CleanerBatches, CoreError> {
        match principal {
            Some(Principal::Service(_)) => {}
            Some(Principal::User(_)) => {
                return Err(CoreError::PermissionDenied(
                    "only services load read models",
                ));
            }
            None => return Err(CoreError::Unauthenticated),
        }
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(error) = send_states(&pool, &sender).await {
                sender.send(Err(error)).await.ok();
            }
        });
        Ok(receiver)
    }
}

async fn send_states(
    pool: &PgPool,
    sender: &mpsc::Sender<Result<Vec<CleanerState>, CoreError>>,
) -> Result<(), CoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let mut states = cleaners::stream_states(&mut transaction);
    let mut sent = 0_usize;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = states.next().await.transpose()?;
        let last = next.is_none();
        batch.extend(next);
        if batch.len() == BATCH || (last && !batch.is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let count = full.len();
            if sender.send(Ok(full)).await.is_err() {
                tracing::info!(sent, "the reader of the cleaner stream went away");
                return Ok(());
            }
            sent += count;
        }
        if last {
            break;
        }
    }
    tracing::info!(sent, "streamed every cleaner");
    Ok(())
}
