//! A full disk: a node whose data directory is a small `tmpfs` that a
//! balloon file fills refuses writes with MySQL's 1021 "Disk full", keeps
//! serving reads, takes writes again once the balloon is gone, and after a
//! restart holds every write it acknowledged. Needs root (the mount).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use duet_server::{Config, Server};
use mysql_async::prelude::*;

/// A `tmpfs` of `mb` MiB mounted on a fresh directory; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mb: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "the disk test needs root to mount a tmpfs"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk until `leave` bytes are free, with one file.
fn balloon(disk: &Path, leave: u64) -> PathBuf {
    let path = disk.join("balloon");
    let free = duet_server::disk::space(disk).unwrap().available;
    let size = free.saturating_sub(leave);
    let status = Command::new("fallocate")
        .args(["-l", &size.to_string()])
        .arg(&path)
        .status()
        .expect("fallocate runs");
    assert!(status.success(), "fallocate of {size} bytes");
    path
}

fn config(disk: &Path) -> Config {
    Config {
        data_dir: disk.join("data"),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

fn url(server: &Server) -> String {
    format!("mysql://root@{}/", server.mysql_addr())
}

async fn insert(c: &mut mysql_async::Conn, id: u64) -> Result<(), mysql_async::Error> {
    c.query_drop(format!("INSERT INTO d.t VALUES ({id}, REPEAT('x', 200))"))
        .await
}

async fn count(c: &mut mysql_async::Conn, hint: &str) -> u64 {
    let q = format!("SELECT /*+ READ_FROM_STORAGE({hint}[t]) */ COUNT(*) FROM d.t");
    c.query_first(q).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers() {
    duet_tests::init_logging();
    let disk = SmallDisk::mount(256);
    let server = Server::start(config(disk.path())).await.unwrap();
    let mut c = mysql_async::Conn::from_url(url(&server)).await.unwrap();
    c.query_drop("CREATE DATABASE d").await.unwrap();
    c.query_drop("CREATE TABLE d.t (id BIGINT PRIMARY KEY, pad TEXT)")
        .await
        .unwrap();
    let mut acked = 0u64;
    for id in 0..100 {
        insert(&mut c, id).await.unwrap();
        acked += 1;
    }
    // The reserve is a tenth of 256 MiB; leave a quarter of it free.
    let ballast = balloon(disk.path(), 6 << 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match insert(&mut c, acked).await {
            Ok(()) => acked += 1,
            Err(mysql_async::Error::Server(e)) => break e,
            Err(e) => panic!("the connection must live: {e}"),
        }
        assert!(Instant::now() < deadline, "writes never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((refused.code, refused.state.as_str()), (1021, "HY000"));
    assert!(
        refused.message.starts_with("Disk full"),
        "{}",
        refused.message
    );
    // Reads go on, on both engines, and see every acknowledged row.
    assert_eq!(count(&mut c, "ROW").await, acked);
    assert_eq!(count(&mut c, "COLUMNAR").await, acked);
    // The placeholder gave its space back when the balloon filled the disk.
    assert!(
        !disk
            .path()
            .join("data")
            .join(duet_server::disk::PLACEHOLDER)
            .exists()
    );
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = insert(&mut c, acked).await {
        assert!(Instant::now() < deadline, "writes never taken again: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acked += 1;
    drop(c);
    server.stop().await;
    let server = Server::start(config(disk.path())).await.unwrap();
    let mut c = mysql_async::Conn::from_url(url(&server)).await.unwrap();
    assert_eq!(count(&mut c, "ROW").await, acked);
    let ids: Vec<u64> = c.query("SELECT id FROM d.t ORDER BY id").await.unwrap();
    assert_eq!(ids, (0..acked).collect::<Vec<_>>());
    drop(c);
    server.stop().await;
}
