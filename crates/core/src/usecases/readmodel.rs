//! What other services load their read models from: every cleaner, and who booked whom,
//! each as of one consistent moment, for services only.

use futures_util::{StreamExt as _, stream::BoxStream};
use spruce_platform::identity::Principal;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

use crate::{
    domain::booking::{BookingPair, CleanerState, CompletedJob},
    error::CoreError,
    store::{self, bookings, cleaners},
};

/// Rows per message.
const BATCH: usize = 500;

/// Batches in flight between the database and a slow reader; the database cursor waits
/// while they are full, so memory stays bounded whatever the number of rows.
const STREAM_BUFFER: usize = 4;

/// What a read-model stream carries: batches of rows, or the error that ended it.
pub type Batches<T> = mpsc::Receiver<Result<Vec<T>, CoreError>>;

/// A query that streams rows over a connection.
type RowStream<T> = for<'c> fn(&'c mut PgConnection) -> BoxStream<'c, Result<T, CoreError>>;

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

    /// Starts streaming every cleaner with a profile and their live bookings.
    ///
    /// # Errors
    /// See [`ReadModels::stream`].
    pub fn stream_cleaners(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Batches<CleanerState>, CoreError> {
        self.stream(principal, cleaners::stream_states)
    }

    /// Starts streaming every booking with a cleaner that was not cancelled.
    ///
    /// # Errors
    /// See [`ReadModels::stream`].
    pub fn stream_booking_pairs(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Batches<BookingPair>, CoreError> {
        self.stream(principal, bookings::stream_pairs)
    }

    /// Starts streaming every completed booking with its home and actual duration.
    ///
    /// # Errors
    /// See [`ReadModels::stream`].
    pub fn stream_completed(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Batches<CompletedJob>, CoreError> {
        self.stream(principal, bookings::stream_completed)
    }

    /// Streams the rows of `rows` from one REPEATABLE READ snapshot, in batches. Only
    /// services may ask (which ones, the authentication layer decides per RPC). The stream
    /// ends early when the receiver goes away.
    ///
    /// # Errors
    /// PermissionDenied for a user; a database failure arrives as the stream's last item.
    fn stream<T: Send + 'static>(
        &self,
        principal: Option<&Principal>,
        rows: RowStream<T>,
    ) -> Result<Batches<T>, CoreError> {
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
            if let Err(error) = send_batches(&pool, rows, &sender).await {
                sender.send(Err(error)).await.ok();
            }
        });
        Ok(receiver)
    }
}

async fn send_batches<T>(
    pool: &PgPool,
    rows: RowStream<T>,
    sender: &mpsc::Sender<Result<Vec<T>, CoreError>>,
) -> Result<(), CoreError> {
    let mut transaction = store::begin_snapshot(pool).await?;
    let mut stream = rows(&mut transaction);
    let mut sent = 0_usize;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = stream.next().await.transpose()?;
        let last = next.is_none();
        batch.extend(next);
        if batch.len() == BATCH || (last && !batch.is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let count = full.len();
            if sender.send(Ok(full)).await.is_err() {
                tracing::info!(sent, "the reader of a read-model stream went away");
                return Ok(());
            }
            sent += count;
        }
        if last {
            break;
        }
    }
    tracing::info!(sent, "streamed a read model");
    Ok(())
}
