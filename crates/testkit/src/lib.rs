//! What the tests of every crate share: a database and a folder of their own that go away
//! with them, one way to wait for something to happen, ports nothing listens on, and an
//! S3-compatible server.
//!
//! Each test makes its own database and its own queue names, so tests run in parallel and
//! beside a running `make run` without touching it.

use std::{future::Future, time::Duration};

use sqlx::{Connection as _, Executor as _, PgConnection};
use uuid::Uuid;

/// The maintenance database of the local PostgreSQL the tests use (where
/// `DatabaseSettings::default()` points), from which others are made and dropped.
const MAINTENANCE_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of the test's own on the local PostgreSQL, named `spruce_test_<id>_<purpose>`.
/// Whoever connects first makes it (services create their database when missing), and it is
/// dropped, with any connection still open, when the `TestDb` is dropped: also when the test
/// panics.
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Names a new database for `purpose` (the service whose schema it holds, say).
    #[must_use]
    pub fn new(purpose: &str) -> Self {
        Self {
            name: format!("spruce_test_{}_{purpose}", Uuid::new_v4().simple()),
        }
    }

    /// Its name, for a service's `database.name`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        run_aside(async move {
            if let Ok(mut connection) = PgConnection::connect(MAINTENANCE_DATABASE).await {
                connection
                    .execute(sqlx::AssertSqlSafe(statement))
                    .await
                    .ok();
            }
        });
    }
}

/// A folder of the test's own in the machine's temporary folder, removed with everything in
/// it when the `TempFolder` is dropped.
pub struct TempFolder {
    path: std::path::PathBuf,
}

impl TempFolder {
    /// Makes a new folder for `purpose`.
    ///
    /// # Panics
    /// When the folder cannot be made.
    #[must_use]
    pub fn new(purpose: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("spruce-{purpose}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("the temporary folder is made");
        TempFolder { path }
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// It as a `file://` URL (a store's `storage.url`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.path).ok();
    }
}

/// Runs `work` to its end on a thread and runtime of its own, for the clean-up of a `Drop`:
/// a test's runtime cannot be blocked on from inside, and may be ending.
pub fn run_aside<F>(work: F)
where
    F: Future + Send + 'static,
{
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for clean-up");
        runtime.block_on(work);
    });
    thread.join().ok();
}

/// Polls `check` every 50 ms until it answers `Ok`, for at most `limit`; then, or when
/// `limit` has passed, returns its last answer (`Err` saying what it last saw).
pub async fn try_eventually<T, E, F, Fut>(limit: Duration, mut check: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let answer = check().await;
        if answer.is_ok() || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`try_eventually`], failing the test with `what` and the last thing `check` saw when it
/// never answered `Ok`.
///
/// # Panics
/// When `limit` passes first.
pub async fn eventually<T, E, F, Fut>(what: &str, limit: Duration, check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match try_eventually(limit, check).await {
        Ok(value) => value,
        Err(seen) => panic!("{what} did not happen within {limit:?}; last seen: {seen:?}"),
    }
}

/// Waits up to 10 s for `url` (`http://host:port/path`, a service's `/readyz`) to answer
/// 200, asking over plain HTTP/1.1.
///
/// # Panics
/// When `url` is not of that form, or 10 s pass first.
pub async fn wait_until_ready(url: &str) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    eventually(url, Duration::from_secs(10), || status_of(authority, path)).await;
}

/// The status line `GET path` gets from `authority`, when it is not 200.
async fn status_of(authority: &str, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|error| error.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| error.to_string())?;
    let mut head = [0_u8; 64];
    let read = stream
        .read(&mut head)
        .await
        .map_err(|error| error.to_string())?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        Err(status_line.to_owned())
    }
}

/// Runs `rabbitmqctl -q` with `arguments` against the local broker; returns what it printed.
///
/// # Panics
/// When it cannot run or fails.
pub fn rabbitmqctl(arguments: &[&str]) -> String {
    let output = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(arguments)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The names of the queues of the local broker's virtual host `vhost` that start with
/// `prefix`, sorted.
///
/// # Panics
/// When `rabbitmqctl` fails.
pub fn queues_named(vhost: &str, prefix: &str) -> Vec<String> {
    let listed = rabbitmqctl(&["list_queues", "-p", vhost, "--no-table-headers", "name"]);
    let mut names: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Closes the local broker's client connections named `name` (the `connection_name` a
/// client gives), as a network cut would end them; returns how many it closed.
///
/// # Panics
/// When `rabbitmqctl` fails.
pub fn close_connections_named(name: &str) -> usize {
    let listed = rabbitmqctl(&[
        "list_connections",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let named = format!("{{\"connection_name\",\"{name}\"}}");
    let pids: Vec<&str> = listed
        .lines()
        .filter(|line| line.contains(&named))
        .filter_map(|line| line.split('\t').next())
        .collect();
    for pid in &pids {
        rabbitmqctl(&["close_connection", pid, "closed by a test"]);
    }
    pids.len()
}

/// Makes the RabbitMQ virtual host `name` on the local broker, open to `guest`: a test
/// that takes the broker away from its services closes their connections there alone.
/// `rabbitmqctl(&["delete_vhost", name])` removes it.
///
/// # Panics
/// When `rabbitmqctl` fails.
pub fn add_vhost(name: &str) {
    rabbitmqctl(&["add_vhost", name]);
    rabbitmqctl(&["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
}

/// A port nothing listens on right now, chosen at random below Linux's ephemeral range
/// (32768 and up), and claimed for ten minutes in the machine's temporary folder
/// (`spruce-test-ports/<port>`) so that no other test process picks it meanwhile. A port
/// the kernel hands out for `:0` is also the kind it hands to outgoing connections, so a
/// parallel test's connection to PostgreSQL could take it before the child process meant
/// to listen on it binds it; and two processes drawing from one range would meet.
///
/// # Panics
/// When 1,000 draws find no free port.
#[must_use]
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher as _, RandomState};
    const CLAIM: Duration = Duration::from_secs(600);
    let claims = std::env::temp_dir().join("spruce-test-ports");
    std::fs::create_dir_all(&claims).ok();
    for attempt in 0_u64..1_000 {
        let draw = RandomState::new().hash_one((std::process::id(), attempt));
        let port = 20_000 + u16::try_from(draw % 12_000).expect("below 12000");
        let claim = claims.join(port.to_string());
        let stale = std::fs::metadata(&claim)
            .and_then(|metadata| metadata.modified())
            .map(|claimed| claimed.elapsed().map_or(true, |age| age > CLAIM));
        if matches!(stale, Ok(true)) {
            std::fs::remove_file(&claim).ok();
        }
        let claimed = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim)
            .is_ok();
        if claimed && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// moto's S3 server (server mode; `make test` installs `moto[server]`) on a free port,
/// stopped with the test.
pub struct Moto {
    /// Where it answers, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _process: tokio::process::Child,
}

impl Moto {
    /// Starts it and waits until it answers.
    ///
    /// # Panics
    /// When it cannot be started or does not answer within 20 s.
    pub async fn start() -> Moto {
        let port = free_port();
        let process = tokio::process::Command::new("python3")
            .args(["-m", "moto.server", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs moto's server (make test installs moto[server])");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(&endpoint).send().await.is_ok() {
                return Moto {
                    endpoint,
                    _process: process,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto's server did not answer within 20 s (is moto[server] installed?)");
    }

    /// Makes a new bucket and returns its name.
    ///
    /// # Panics
    /// When the server refuses.
    pub async fn bucket(&self) -> String {
        let bucket = format!("spruce-test-{}", Uuid::new_v4().simple());
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("moto answers");
        assert!(created.status().is_success(), "{}", created.status());
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_test_database_is_gone_once_dropped() {
        let database = TestDb::new("kit");
        let name = database.name().to_owned();
        let mut maintenance = PgConnection::connect(MAINTENANCE_DATABASE).await.unwrap();
        maintenance
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let held_open = PgConnection::connect(&url).await.unwrap();
        let exists = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)";
        let before: bool = sqlx::query_scalar(exists)
            .bind(&name)
            .fetch_one(&mut maintenance)
            .await
            .unwrap();
        assert!(before);
        // Dropped with a connection still open.
        drop(database);
        let after: bool = sqlx::query_scalar(exists)
            .bind(&name)
            .fetch_one(&mut maintenance)
            .await
            .unwrap();
        assert!(!after);
        drop(held_open);
    }

    #[tokio::test]
    async fn eventually_answers_what_check_found_and_try_eventually_gives_up() {
        let mut looks = 0;
        let found = eventually("the third look", Duration::from_secs(5), || {
            looks += 1;
            let answer = if looks == 3 { Ok(looks) } else { Err(looks) };
            async move { answer }
        })
        .await;
        assert_eq!(found, 3);
        let never = try_eventually(Duration::from_millis(120), || async { Err::<(), _>("no") });
        assert_eq!(never.await, Err("no"));
    }

    #[tokio::test]
    async fn readiness_is_a_200_and_anything_else_is_what_was_seen() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for answer in ["HTTP/1.1 503 Service Unavailable", "HTTP/1.1 200 OK"] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0_u8; 256];
                let read = stream.read(&mut request).await.unwrap();
                assert!(request[..read].starts_with(b"GET /readyz HTTP/1.1\r\n"));
                let response = format!("{answer}\r\ncontent-length: 0\r\n\r\n");
                stream.write_all(response.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(
            status_of(&authority, "/readyz").await,
            Err("HTTP/1.1 503 Service Unavailable".to_owned())
        );
        wait_until_ready(&format!("http://{authority}/readyz")).await;
    }

    #[test]
    fn a_free_port_can_be_bound_and_is_not_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        for port in &ports {
            assert!((20_000..32_000).contains(port));
            assert!(std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok());
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
    }
}
