//! A cluster of real `duet` processes for a fault run, one per host of a
//! [`Net`], each on its host's address with the same ports, founded
//! together with `--initial-cluster`; and the process faults — `kill -9`
//! and a restart on the same data directory, `SIGSTOP` and `SIGCONT` —
//! and the disk fault: each data directory a small `tmpfs` of its own,
//! filled by a balloon file and freed again — and the clock fault: each
//! node runs under `libfaketime`, its wall clock offset by the number of
//! seconds in a file of its own (its monotonic clock untouched, as a real
//! clock step leaves it).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::net::Net;

pub const RAFT_PORT: u16 = 20160;
pub const MYSQL_PORT: u16 = 4000;
pub const STATUS_PORT: u16 = 10080;
/// The account the clients use (its password is the same).
const USER: &str = "chaos";

struct Proc {
    child: Option<Child>,
    paused: bool,
    /// Its clock's step, in seconds.
    clock: i64,
}

/// Each node's data directory is a `tmpfs` of this many MiB (small enough
/// to fill at once, large enough for a run's data).
pub const DISK_MB: u64 = 512;
/// The free space a filled disk is left with: under a quarter of the
/// node's reserve (a tenth of the disk), so its placeholder goes too.
const LEFT_FREE: u64 = DISK_MB * (1 << 20) / 50;

/// `libfaketime` (Debian's `faketime`, installed by `scripts/setup.sh`).
pub const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The nodes `1..=n` of a run.
pub struct Cluster {
    pub net: Net,
    binary: PathBuf,
    root: PathBuf,
    env: Vec<(String, String)>,
    nodes: Vec<Proc>,
}

impl Cluster {
    /// Starts `duet serve` on every host of `net`, data under `root/n{i}`,
    /// with the `DUET_*` settings of `env`.
    pub fn start(
        net: Net,
        hosts: usize,
        binary: &Path,
        root: &Path,
        env: &[(&str, &str)],
    ) -> io::Result<Cluster> {
        let mut cluster = Cluster {
            net,
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            env: (env.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nodes: (0..hosts)
                .map(|_| Proc {
                    child: None,
                    paused: false,
                    clock: 0,
                })
                .collect(),
        };
        if !Path::new(FAKETIME).exists() {
            return Err(io::Error::other(format!(
                "{FAKETIME} is missing (scripts/setup.sh installs Debian's faketime)"
            )));
        }
        for i in 1..=hosts {
            cluster.mount(i)?;
            cluster.jump_clock(i, 0)?;
        }
        // The clients connect from the harness's address, not loopback.
        let accounts = format!(
            "[[users]]\nname = 'root'\npassword = ''\nhost = 'localhost'\n\n\
             [[users]]\nname = '{USER}'\npassword = '{USER}'\nhost = '{}'\n",
            cluster.net.harness_addr()
        );
        std::fs::write(cluster.config(), accounts)?;
        for i in 1..=hosts {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s data directory.
    pub fn dir(&self, i: usize) -> PathBuf {
        self.root.join(format!("n{i}"))
    }

    fn mount(&self, i: usize) -> io::Result<()> {
        let dir = self.dir(i);
        std::fs::create_dir_all(&dir)?;
        let size = format!("size={DISK_MB}m");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&dir)
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!("cannot mount a tmpfs on {dir:?}")));
        }
        Ok(())
    }

    fn balloon(&self, i: usize) -> PathBuf {
        // Beside the node's own files, on its disk.
        self.dir(i).join("chaos-balloon")
    }

    /// Fills node `i`'s disk but for a sliver (see `LEFT_FREE`).
    pub fn fill(&self, i: usize) -> io::Result<()> {
        let free = duet_server::disk::space(&self.dir(i))?.available;
        let status = Command::new("fallocate")
            .args(["-l", &free.saturating_sub(LEFT_FREE).to_string()])
            .arg(self.balloon(i))
            .status()?;
        if !status.success() {
            return Err(io::Error::other("fallocate failed"));
        }
        Ok(())
    }

    fn clock_file(&self, i: usize) -> PathBuf {
        self.dir(i).with_extension("clock")
    }

    /// Steps node `i`'s wall clock `secs` seconds away from the true time
    /// (it follows within a second, `FAKETIME_CACHE_DURATION`).
    pub fn jump_clock(&mut self, i: usize, secs: i64) -> io::Result<()> {
        std::fs::write(self.clock_file(i), format!("{secs:+}\n"))?;
        self.nodes[i - 1].clock = secs;
        Ok(())
    }

    /// How far node `i`'s clock is stepped from the true time (seconds).
    pub fn clock_offset(&self, i: usize) -> i64 {
        self.nodes[i - 1].clock
    }

    /// The node that hands out timestamps: the leader of the first region,
    /// as the first node that answers `/cluster` says.
    pub fn timestamp_host(&self) -> Option<usize> {
        (1..=self.len()).find_map(|i| {
            let (code, body) = crate::http_get(self.status_addr(i), "/cluster").ok()?;
            if code != 200 {
                return None;
            }
            let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
            let first = (doc["regions"].as_array()?.iter()).find(|r| r["id"] == 1)?;
            let leader = first["leader"].as_u64()? as usize;
            (1..=self.len()).contains(&leader).then_some(leader)
        })
    }

    /// Frees every filled disk.
    pub fn heal_disks(&self) -> io::Result<()> {
        for i in 1..=self.nodes.len() {
            match std::fs::remove_file(self.balloon(i)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The MySQL URL of node `i` (no database).
    pub fn mysql_url(&self, i: usize) -> String {
        format!("mysql://{USER}:{USER}@{}:{MYSQL_PORT}/", self.net.addr(i))
    }

    /// The last `lines` lines node `i` wrote to its log (stdout and
    /// stderr of every run of it), for a failure's report.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read(self.dir(i).with_extension("log")).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn config(&self) -> PathBuf {
        self.root.join("duet.toml")
    }

    /// Node `i`'s status address.
    pub fn status_addr(&self, i: usize) -> std::net::SocketAddr {
        let addr = format!("{}:{STATUS_PORT}", self.net.addr(i));
        addr.parse().expect("an IPv4 address")
    }

    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let initial: Vec<String> = (1..=self.nodes.len())
            .map(|j| format!("{j}={}:{RAFT_PORT}", self.net.addr(j)))
            .collect();
        let addr = self.net.addr(i);
        let dir = self.dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))?;
        let mut command: Command = self.net.command(i, &self.binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(&dir)
            .args(["--node-id", &i.to_string()])
            .args(["--mysql-addr", &format!("{addr}:{MYSQL_PORT}")])
            .args(["--status-addr", &format!("{addr}:{STATUS_PORT}")])
            .args(["--raft-addr", &format!("{addr}:{RAFT_PORT}")])
            .args(["--initial-cluster", &initial.join(",")])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", self.clock_file(i))
            .env("FAKETIME_CACHE_DURATION", "1")
            // Without it `clock_nanosleep` fails; Duet's timers use the
            // monotonic clock, which a step of the wall clock leaves alone.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.nodes[i - 1].child = Some(command.spawn()?);
        self.nodes[i - 1].paused = false;
        Ok(())
    }

    /// `kill -9` of node `i` (nothing if it is not running).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i - 1].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.nodes[i - 1].paused = false;
    }

    /// Starts node `i` again on its data directory if it is not running.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        if self.nodes[i - 1].child.is_none() {
            self.spawn(i)?;
        }
        Ok(())
    }

    /// The nodes that exited on their own (not killed by the nemesis),
    /// with how: a node that dies unprompted is a failure of the run.
    pub fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut dead = Vec::new();
        for (n, p) in self.nodes.iter_mut().enumerate() {
            if let Some(c) = &mut p.child
                && let Ok(Some(status)) = c.try_wait()
            {
                dead.push((n + 1, status));
            }
        }
        dead
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i - 1].child.is_some()
    }

    /// `SIGSTOP` to node `i`.
    pub fn pause(&mut self, i: usize) {
        if self.signal(i, "-STOP") {
            self.nodes[i - 1].paused = true;
        }
    }

    /// `SIGCONT` to node `i` if it is paused.
    pub fn resume(&mut self, i: usize) {
        if self.nodes[i - 1].paused && self.signal(i, "-CONT") {
            self.nodes[i - 1].paused = false;
        }
    }

    fn signal(&self, i: usize, signal: &str) -> bool {
        let Some(child) = &self.nodes[i - 1].child else {
            return false;
        };
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Ends every fault: links healed, paused nodes resumed, killed ones
    /// started again.
    pub fn heal(&mut self) -> io::Result<()> {
        self.net.heal()?;
        self.heal_disks()?;
        for i in 1..=self.nodes.len() {
            self.jump_clock(i, 0)?;
            self.resume(i);
            self.restart(i)?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 1..=self.nodes.len() {
            self.kill(i);
            let _ = Command::new("umount").arg("-l").arg(self.dir(i)).status();
        }
    }
}
