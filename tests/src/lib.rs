//! Helpers for Duet's integration tests: start a real server (in-process or
//! as the `duet` binary) on ephemeral loopback ports with a temporary data
//! directory, and talk to it with real clients.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use duet_server::{Config, Server, User};

pub mod chaos;
pub mod slt;

/// An in-process server with its own data directory.
pub struct TestServer {
    pub server: Server,
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default configuration on ephemeral ports.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after letting `tweak` change the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        init_logging();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: data_dir.path().join("data"),
            mysql_addr: "127.0.0.1:0".into(),
            status_addr: "127.0.0.1:0".into(),
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        TestServer { server, data_dir }
    }

    pub fn mysql_addr(&self) -> SocketAddr {
        self.server.mysql_addr()
    }

    pub fn status_addr(&self) -> SocketAddr {
        self.server.status_addr()
    }

    /// A mysql_async URL for `user:password`.
    pub fn url(&self, user: &str, password: &str) -> String {
        let a = self.mysql_addr();
        format!("mysql://{user}:{password}@{}:{}", a.ip(), a.port())
    }

    /// A connection as `root` with no password.
    pub async fn connect(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.url("root", ""))
            .await
            .expect("root connects")
    }
}

/// Routes the server's logs to the test output; `RUST_LOG` picks the level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// An account for tests.
pub fn user(name: &str, password: &str, host: &str) -> User {
    User {
        name: name.into(),
        password: password.into(),
        host: host.into(),
        admin: None,
    }
}

/// A loopback port that was free a moment ago. Ports come from below the
/// kernel's ephemeral range (32768 and up on Linux), so that no outgoing
/// connection of a test running alongside takes one before its server
/// binds it, and each is handed out once per process.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < SPAN, "no free loopback port left");
        let port = u16::try_from(LOW + (start + n) % SPAN).expect("a port");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `GET path` over plain HTTP/1.0; returns (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

/// `POST path` with a JSON body over plain HTTP/1.0; returns (status code, body).
pub fn http_post_json(addr: SocketAddr, path: &str, json: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        ),
    )
}

fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    s.write_all(request.as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Where the test data lives: Duet's own `.slt` files (`slt/`) and the
/// sqllogictest corpus baseline (`slt-baseline.txt`).
pub const DATA_DIR: &str = env!("CARGO_MANIFEST_DIR");
