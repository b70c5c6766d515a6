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
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
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
    HashingMemory::default().hash(password)
}

/// Returns whether `password` matches `hash`; with no hash, spends the same time and says no.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    HashingMemory::default().verify(password, hash)
}

/// The working memory of argon2id (about 19 MiB with the default parameters), kept by a
/// hashing thread for every hash it computes while busy, and dropped when it has been idle
/// a while. Allocated per hash (as the argon2 crate does), the blocks of a burst stayed
/// resident: 384 MB after 400 requests on two threads, against 62 MB this way.
#[derive(Default)]
struct HashingMemory {
    blocks: Vec<Block>,
}

impl HashingMemory {
    /// Returns working memory for `params`, growing it only when a hash needs more.
    ///
    /// The blocks are reserved as one allocation over 32 MiB, of which only what the hash
    /// needs is touched (the rest is address space, not memory). glibc maps an allocation
    /// that large on its own and unmaps it when it is dropped. A smaller one (19 MiB) would
    /// be mapped once; but freeing it makes glibc raise its mapping threshold to its size,
    /// so every later hash would come from, and stay in, the thread's heap.
    fn for_params(&mut self, params: &Params) -> &mut [Block] {
        const MAPPED_BYTES: usize = 32 * 1024 * 1024 + 1;
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks = Vec::new();
            let mut blocks =
                Vec::with_capacity(needed.max(MAPPED_BYTES.div_ceil(std::mem::size_of::<Block>())));
            blocks.resize(needed, Block::default());
            self.blocks = blocks;
        }
        &mut self.blocks[..needed]
    }

    fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        let params = Params::default();
        let salt_bytes: [u8; 16] = rand::random();
        let mut output = [0_u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt_bytes,
                &mut output,
                self.for_params(&params),
            )
            .map_err(|error| anyhow::anyhow!("failed to hash password: {error}"))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|error| anyhow::anyhow!("failed to encode argon2 parameters: {error}"))?,
            salt: Some(
                Salt::new(&salt_bytes)
                    .map_err(|error| anyhow::anyhow!("failed to encode a salt: {error}"))?,
            ),
            hash: Some(
                Output::new(&output)
                    .map_err(|error| anyhow::anyhow!("failed to encode a hash: {error}"))?,
            ),
        };
        Ok(hash.to_string())
    }

    fn verify(&mut self, password: &str, hash: Option<&str>) -> bool {
        let matches = self
            .matches(password, hash.unwrap_or(DECOY_HASH))
            .unwrap_or(false);
        matches && hash.is_some()
    }

    /// Recomputes the hash of `password` with the parameters and salt of `stored`; `None`
    /// when `stored` is not an argon2 PHC string.
    fn matches(&mut self, password: &str, stored: &str) -> Option<bool> {
        let stored = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(stored.algorithm.as_str()).ok()?;
        let version = stored
            .version
            .map_or(Ok(Version::default()), Version::try_from)
            .ok()?;
        let params = Params::try_from(&stored).ok()?;
        let (salt, expected) = (stored.salt?, stored.hash?);
        let mut output = vec![0_u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut output,
                self.for_params(&params),
            )
            .ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&output).ok()? == expected)
    }
}

type Job = Box<dyn FnOnce(&mut HashingMemory) + Send>;

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

    /// Hashes `password` (see [`hash_password`]) on a hashing thread.
    ///
    /// # Errors
    /// [`CoreError::Busy`] when no thread was free within the wait; unexpected otherwise.
    pub async fn hash(&self, password: String) -> Result<String, CoreError> {
        Ok(self.run(move |memory| memory.hash(&password)).await??)
    }

    /// Checks `password` against `hash` (see [`verify_password`]) on a hashing thread.
    ///
    /// # Errors
    /// [`CoreError::Busy`] when no thread was free within the wait.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, CoreError> {
        self.run(move |memory| memory.verify(&password, hash.as_deref()))
            .await
    }

    /// Runs `work` on a hashing thread, with that thread's working memory, and returns its
    /// result.
    async fn run<T, F>(&self, work: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut HashingMemory) -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| CoreError::Busy)?
            .context("the password hashing pool is closed")?;
        let (answer, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            answer.send(work(memory)).ok();
            // The thread is free again once the work is done, even if nobody waits for it.
            drop(permit);
        });
        self.jobs
            .try_send(job)
            .map_err(|_| anyhow::anyhow!("the password hashing pool refused a job"))?;
        Ok(result.await.context("a password hashing thread stopped")?)
    }
}

/// How long a hashing thread keeps its working memory after its last hash: through a burst
/// it is reused; after it, given back.
const KEEP_MEMORY_WHEN_IDLE: Duration = Duration::from_secs(5);

/// How long a thread waits for a job while it holds the queue. The other idle threads wait
/// for the queue meanwhile, so each looks at its own idle time at least this often times
/// the pool's size.
const IDLE_CHECK: Duration = Duration::from_secs(1);

fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory = HashingMemory::default();
    let mut idle_since = Instant::now();
    loop {
        let job = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(IDLE_CHECK);
        match job {
            // A panicking hash must not take the thread with it: the pool would shrink and,
            // once empty, accepted jobs would wait forever. The caller sees the dropped answer.
            Ok(job) => {
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
                if outcome.is_err() {
                    tracing::error!("a password hashing job panicked");
                    memory = HashingMemory::default();
                }
                idle_since = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {
                if idle_since.elapsed() >= KEEP_MEMORY_WHEN_IDLE {
                    memory = HashingMemory::default();
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
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
    fn working_memory_is_one_allocation_glibc_maps_whatever_it_has_learnt() {
        let mut memory = HashingMemory::default();
        let params = Params::default();
        assert_eq!(memory.for_params(&params).len(), params.block_count());
        let reserved = memory.blocks.capacity() * std::mem::size_of::<Block>();
        assert!(reserved > 32 * 1024 * 1024, "{reserved} bytes reserved");
        // A larger hash grows it; a smaller one reuses it.
        let larger = Params::new(40 * 1024, 2, 1, None).unwrap();
        assert_eq!(memory.for_params(&larger).len(), larger.block_count());
        let smaller = Params::new(1024, 2, 1, None).unwrap();
        assert_eq!(memory.for_params(&smaller).len(), 1024);
        assert_eq!(memory.blocks.len(), larger.block_count());
    }

    #[test]
    fn hashes_are_standard_argon2id_phc_strings_both_ways() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};

        // Ours verify with the argon2 crate's own verifier ...
        let ours = hash_password("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // ... and hashes it made (every stored one so far) verify with ours.
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", Some(&theirs)));
        assert!(!verify_password("wrong horse", Some(&theirs)));
        // Another memory size is honoured too.
        let small = Argon2::from(Params::new(1024, 2, 1, None).unwrap())
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", Some(&small)));
        assert!(!verify_password("correct horse", Some("not a hash")));
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies() {
        let pool = PasswordHashing::new(1, Duration::from_secs(10)).unwrap();
        let hash = pool.hash("correct horse".to_owned()).await.unwrap();
        assert!(
            pool.verify("correct horse".to_owned(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify("wrong horse".to_owned(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!pool.verify("correct horse".to_owned(), None).await.unwrap());
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
                    pool.run(move |_| {
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
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_alone_and_the_pool_keeps_its_thread() {
        let pool = PasswordHashing::new(1, Duration::from_secs(5)).unwrap();
        let failed = pool.run(|_| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(CoreError::Unexpected(_))));
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }
}
