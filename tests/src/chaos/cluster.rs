//! A cluster of real `duet` processes for a fault run, one per host of a
//! [`Net`], each on its host's address with the same ports, founded
//! together with `--initial-cluster`; and the process faults — `kill -9`
//! and a restart on the same data directory, `SIGSTOP` and `SIGCONT`.

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
}

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
                })
                .collect(),
        };
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

    /// The MySQL URL of node `i` (no database).
    pub fn mysql_url(&self, i: usize) -> String {
        format!("mysql://{USER}:{USER}@{}:{MYSQL_PORT}/", self.net.addr(i))
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
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.nodes[i - 1] = Proc {
            child: Some(command.spawn()?),
            paused: false,
        };
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
        for i in 1..=self.nodes.len() {
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
        }
    }
}
