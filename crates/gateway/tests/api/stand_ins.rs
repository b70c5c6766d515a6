//! Stand-ins for what a test takes away or listens to: a TCP proxy it can cut, and a real
//! SMTP server that keeps what it receives.

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use spruce_testkit::free_port;

/// A TCP proxy on a free loopback port to `target_port`, which a test can cut: open
/// connections are closed and new ones refused, as when a database goes away.
pub(crate) struct TcpProxy {
    pub(crate) port: u16,
    cut: CancellationToken,
}

impl TcpProxy {
    pub(crate) async fn to(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = CancellationToken::new();
        let stop = cut.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    return;
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        TcpProxy { port, cut }
    }

    /// Closes every connection and the listening port.
    pub(crate) fn cut(&self) {
        self.cut.cancel();
    }
}

/// A real SMTP server (`scripts/smtp-sink.py`, aiosmtpd) that keeps what it receives.
pub(crate) struct SmtpSink {
    pub(crate) port: u16,
    file: std::path::PathBuf,
    _process: tokio::process::Child,
}

impl SmtpSink {
    /// Starts the server on a free port and waits until it listens.
    pub(crate) async fn start() -> Self {
        use tokio::io::AsyncBufReadExt as _;

        let port = free_port();
        let file = std::env::temp_dir().join(format!("spruce-smtp-{}.jsonl", Uuid::new_v4()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/smtp-sink.py");
        let mut process = tokio::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs scripts/smtp-sink.py (make test installs aiosmtpd)");
        let stdout = process.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink starts within 20 s")
            .unwrap();
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the SMTP sink did not start (is aiosmtpd installed?)"
        );
        SmtpSink {
            port,
            file,
            _process: process,
        }
    }

    /// Every message received so far: `{"from", "to", "data"}`.
    pub(crate) fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        std::fs::remove_file(&self.file).ok();
    }
}
