//! Redis over TLS (`rediss://`, as ElastiCache serves it with encryption in transit): a
//! local redis-server on a TLS port, its certificate signed by a CA made for the test.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use redis::AsyncCommands as _;
use secrecy::SecretString;
use spruce_platform::{redis::connect, settings::RedisSettings};
use uuid::Uuid;

/// A redis-server serving TLS only, stopped and its files removed on drop.
struct TlsRedis {
    child: Child,
    folder: PathBuf,
    port: u16,
    ca: String,
}

fn openssl(folder: &Path, arguments: &[&str]) {
    let status = Command::new("openssl")
        .args(arguments)
        .current_dir(folder)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {arguments:?}");
}

impl TlsRedis {
    async fn start() -> Self {
        let folder =
            std::env::temp_dir().join(format!("spruce-redis-tls-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).expect("a temporary folder");
        openssl(
            &folder,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=Spruce test CA",
            ],
        );
        openssl(
            &folder,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            folder.join("names"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("written");
        openssl(
            &folder,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "1",
                "-extfile",
                "names",
            ],
        );
        let port = spruce_testkit::free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--tls-port",
                &port.to_string(),
            ])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(&folder)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian's is built with TLS)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ca = std::fs::read_to_string(folder.join("ca.pem")).expect("the CA");
        TlsRedis {
            child,
            folder,
            port,
            ca,
        }
    }

    fn settings(&self, ca: Option<String>) -> RedisSettings {
        RedisSettings {
            url: SecretString::from(format!("rediss://localhost:{}", self.port)),
            ca,
            key_prefix: "test:".to_owned(),
            timeout: std::time::Duration::from_secs(2),
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[tokio::test]
async fn a_rediss_url_connects_over_tls_and_checks_the_servers_certificate() {
    let server = TlsRedis::start().await;
    let key = format!("tls-{}", Uuid::new_v4().simple());

    let mut trusted = connect(&server.settings(Some(server.ca.clone()))).expect("a client");
    let () = trusted.set(&key, "over TLS").await.expect("SET over TLS");
    let read: String = trusted.get(&key).await.expect("GET over TLS");
    assert_eq!(read, "over TLS");

    // Without the CA, the server's certificate is trusted by neither the system nor webpki:
    // the connection is refused, never made in plain text.
    let mut untrusted = connect(&server.settings(None)).expect("a client");
    let refused: redis::RedisResult<String> = untrusted.get(&key).await;
    assert!(refused.is_err(), "an unknown CA must not be trusted");
}
