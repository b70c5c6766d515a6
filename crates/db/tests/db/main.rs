//! A rotated database password reaches a running pool: a PostgreSQL cluster of the test's
//! own that checks passwords (scram-sha-256; the machine's own trusts everyone), a role
//! whose password changes under a pool that reads its `password_file` again.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use secrecy::SecretString;
use spruce_platform::settings::{DatabaseSettings, SslMode};
use sqlx::{Connection as _, Executor as _, PgConnection, postgres::PgConnectOptions};
use uuid::Uuid;

const ADMIN_PASSWORD: &str = "admin-password";

/// A PostgreSQL cluster with password authentication, stopped and removed on drop.
struct PasswordCluster {
    child: Child,
    folder: PathBuf,
    port: u16,
}

/// The newest `initdb` of the machine's PostgreSQL (Debian and Ubuntu keep each major's
/// programs under /usr/lib/postgresql/<major>/bin, on GitHub's runners too).
fn postgres_bin() -> PathBuf {
    let mut majors: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    majors.sort_by_key(|bin| {
        bin.parent()
            .and_then(|major| major.file_name()?.to_str()?.parse::<u32>().ok())
    });
    majors.pop().expect("an initdb under /usr/lib/postgresql")
}

/// initdb and postgres refuse root: as root, run them as the postgres user.
fn as_cluster_owner(program: PathBuf) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PasswordCluster {
    async fn start() -> Self {
        let folder = std::env::temp_dir().join(format!("spruce-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).expect("a temporary folder");
        let pwfile = folder.join("admin");
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&folder)
            .status();
        let bin = postgres_bin();
        let status = as_cluster_owner(bin.join("initdb"))
            .args(["-U", "postgres", "--auth=scram-sha-256", "-D"])
            .arg(folder.join("data"))
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb");
        let port = spruce_testkit::free_port();
        let child = as_cluster_owner(bin.join("postgres"))
            .arg("-D")
            .arg(folder.join("data"))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(&folder)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let cluster = PasswordCluster {
            child,
            folder,
            port,
        };
        for _ in 0..100 {
            if cluster.admin().await.is_ok() {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the test's PostgreSQL did not start");
    }

    /// A service's settings for logging in to this cluster as `user` with `password`,
    /// checking its files every 50 ms once a test names them.
    fn login(&self, user: &str, password: &str) -> DatabaseSettings {
        DatabaseSettings {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            user: user.to_owned(),
            password: SecretString::from(password.to_owned()),
            password_recheck: std::time::Duration::from_millis(50),
            name: "postgres".to_owned(),
            max_connections: 2,
            ssl_mode: SslMode::Disable,
            create_if_missing: false,
            migrate_on_start: false,
            ..DatabaseSettings::default()
        }
    }

    async fn admin(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(
            &PgConnectOptions::new()
                .host("127.0.0.1")
                .port(self.port)
                .username("postgres")
                .password(ADMIN_PASSWORD)
                .database("postgres"),
        )
        .await
    }
}

impl Drop for PasswordCluster {
    fn drop(&mut self) {
        // SIGTERM through kill(1): runuser passes it on, and postgres shuts down smartly.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_logs_in_with_the_password_its_file_holds_after_a_rotation() {
    let cluster = PasswordCluster::start().await;
    let mut admin = cluster.admin().await.unwrap();
    admin
        .execute("CREATE ROLE spruce_rotating LOGIN PASSWORD 'first-password'")
        .await
        .unwrap();
    let file = cluster.folder.join("database-password");
    std::fs::write(&file, "first-password\n").unwrap();
    let settings = DatabaseSettings {
        password_path: Some(file.clone()),
        ..cluster.login("spruce_rotating", "first-password")
    };
    let pool = spruce_db::connect(&settings).await.unwrap();
    let mut open = pool.acquire().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *open).await.unwrap();

    // Rotated in PostgreSQL, not yet in the file: a new connection is refused, and the one
    // already open keeps working.
    admin
        .execute("ALTER ROLE spruce_rotating PASSWORD 'second-password'")
        .await
        .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), pool.acquire()).await;
    assert!(
        matches!(refused, Ok(Err(_)) | Err(_)),
        "a new connection logged in with the old password"
    );
    sqlx::query("SELECT 1").execute(&mut *open).await.unwrap();

    // The Secret's file changes: new connections log in with the new password.
    std::fs::write(&file, "second-password\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fresh = pool
        .acquire()
        .await
        .expect("a connection with the rotated password");
    sqlx::query("SELECT 1").execute(&mut *fresh).await.unwrap();
    drop((open, fresh));
    pool.close().await;
}

/// Logs in through a fresh connection with what the pool would use now; returns the user.
async fn fresh_login(pool: &sqlx::PgPool) -> Result<String, sqlx::Error> {
    let mut connection = PgConnection::connect_with(&pool.connect_options()).await?;
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(user)
}

/// Writes the Secret's files as the kubelet does: into a folder of their own, then one
/// rename of the `..data` link, so that the user and the password change together.
fn swap_secret(folder: &std::path::Path, generation: u32, user: &str, password: &str) {
    let data = folder.join(format!("..data-{generation}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("core-user"), format!("{user}\n")).unwrap();
    std::fs::write(data.join("core"), format!("{password}\n")).unwrap();
    let next = folder.join("..data-next");
    std::os::unix::fs::symlink(format!("..data-{generation}"), &next).unwrap();
    std::fs::rename(&next, folder.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_taking_turns_rotate_a_password_without_a_moment_when_logins_fail() {
    let cluster = PasswordCluster::start().await;
    let mut admin = cluster.admin().await.unwrap();
    // As the platform stack makes them: two login users per service, the one in use named
    // by the Secret's `<service>-user` file beside its password.
    admin
        .execute("CREATE ROLE spruce_turns_a LOGIN PASSWORD 'password-1'; CREATE ROLE spruce_turns_b LOGIN PASSWORD 'unused'")
        .await
        .unwrap();
    let (user_file, password_file) = (
        cluster.folder.join("core-user"),
        cluster.folder.join("core"),
    );
    // Mounted as the kubelet mounts a Secret: each file a link through `..data`.
    for (file, name) in [(&user_file, "core-user"), (&password_file, "core")] {
        std::os::unix::fs::symlink(format!("..data/{name}"), file).unwrap();
    }
    swap_secret(&cluster.folder, 1, "spruce_turns_a", "password-1");
    let settings = DatabaseSettings {
        user_path: Some(user_file.clone()),
        password_path: Some(password_file.clone()),
        ..cluster.login("spruce_turns_a", "password-1")
    };
    let pool = spruce_db::connect(&settings).await.unwrap();
    assert_eq!(fresh_login(&pool).await.unwrap(), "spruce_turns_a");

    // A rotation: the idle user gets the new password first; logins go on as before while
    // the Secret still names the other; then the Secret's files change together.
    for (generation, user) in [
        (2, "spruce_turns_b"),
        (3, "spruce_turns_a"),
        (4, "spruce_turns_b"),
    ] {
        let password = format!("password-{generation}");
        let rotate = format!("ALTER ROLE {user} PASSWORD '{password}'");
        sqlx::raw_sql(sqlx::AssertSqlSafe(rotate))
            .execute(&mut admin)
            .await
            .unwrap();
        assert_ne!(
            fresh_login(&pool).await.unwrap(),
            user,
            "not switched yet, still logging in"
        );
        swap_secret(&cluster.folder, generation, user, &password);
        let mut switched = false;
        for _ in 0..100 {
            // Every login in between succeeds, with one user or the other.
            if fresh_login(&pool)
                .await
                .expect("no failed login during a rotation")
                == user
            {
                switched = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(switched, "new connections log in as {user}");
    }
    pool.close().await;
}
