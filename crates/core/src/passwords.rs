//! Passwords: argon2id hashes, computed on a few threads of their own.
//!
//! One hash takes about 19 MiB and tens of milliseconds of CPU. On tokio's blocking pool a
//! burst of signups ran hundreds of hashes at once, on hundreds of threads, and the
//! allocator kept each thread's memory afterwards (3.7 GB after 100 signups). Here at most
//! `threads` hashes run at once; a request that cannot get a thread within `wait` is refused
//! as busy (503 with Retry-After at the gateway) instead of queueing without bound.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        mpsc::{self, Receiver, SyncSender},
    },
    time::Duration,
};

use anyhow::Context as _;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{Semaphore, oneshot};

use crate::error::CoreError;

/// A hash of a password nobody has, verified when the email is unknown so that a login for
/// an unknown email takes as long as one with a wrong password.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3BydWNlLWRlY295LXNhbHQ$Zb5mVPNMeq5Mz4mAQkHvIc8T7Qb+9LuhOn0xAvHHnBQ";

/// Hashes a password with argon2id and a random salt. CPU-heavy: call it through
/// [`PasswordHashing`], never on the async runtime.
///
/// # Errors
/// Fails only if the system's random source fails.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|error| anyhow::anyhow!("failed to hash password: {error}"))?;
    Ok(hash.to_string())
}

/// Returns whether `password` matches `hash`; with no hash, spends the same time and says no.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), hash.unwrap_or(DECOY_HASH))
        .is_ok();
    matches && hash.is_some()
}

type Job = Box<dyn FnOnce() + Send>;

/// A small pool of threads for password hashing, with a bounded wait for a free thread.
/// Cheap to clone; the threads stop when the last clone is dropped.
#[derive(Clone)]
pub struct PasswordHashing {
    jobs: SyncSender<Job>,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordHashing {
    /// Starts `threads` hashing threads; a request waits at most `wait` for one.
    ///
    /// # Errors
    /// Fails when a thread cannot be started.
    pub fn new(threads: usize, wait: Duration) -> anyhow::Result<Self> {
        let threads = threads.max(1);
        // Never more jobs than permits, so sending never blocks.
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hashing-{index}"))
                .spawn(move || work(&queue))
                .context("failed to start a password hashing thread")?;
        }
        Ok(PasswordHashing {
            jobs,
            permits: Arc::new(Semaphore::new(threads)),
            wait,
        })
    }

    /// Runs `work` on a hashing thread and returns its result.
    ///
    /// # Errors
    /// [`CoreError::Busy`] when no thread was free within the wait.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| CoreError::Busy)?
            .context("the password hashing pool is closed")?;
        let (answer, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            answer.send(work()).ok();
            // The thread is free again once the work is done, even if nobody waits for it.
            drop(permit);
        });
        self.jobs
            .try_send(job)
            .map_err(|_| anyhow::anyhow!("the password hashing pool refused a job"))?;
        Ok(result.await.context("a password hashing thread stopped")?)
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
    }

    #[test]
    fn the_decoy_hash_is_well_formed_and_never_matches() {
        assert!(argon2::PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_password("anything", None));
    }

    #[tokio::test]
    async fn at_most_the_pool_size_runs_at_once_and_the_rest_are_busy_after_the_wait() {
        let pool = PasswordHashing::new(2, Duration::from_millis(100)).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => done += 1,
                Err(CoreError::Busy) => busy += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(
            done, 2,
            "two ran; the others could not get a thread within 100 ms"
        );
        assert_eq!(busy, 6);
        // Once free, the pool serves again.
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
