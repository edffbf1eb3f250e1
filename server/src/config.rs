//! The one configuration struct of a Duet node. Values are layered: built-in
//! defaults, then a TOML file (`--config`), then `DUET_*` environment
//! variables, then command-line flags; [`Config::validate`] checks the result.
//! `etc/duet.toml` at the top of the repository is the commented template.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything a node reads at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding all of the node's data. Created if missing.
    pub data_dir: PathBuf,
    /// Address of the MySQL protocol listener.
    pub mysql_addr: String,
    /// Address of the HTTP status listener (`/health`, `/metrics`).
    pub status_addr: String,
    /// Connections served at once; one more is refused with error 1040.
    pub max_connections: usize,
    /// Largest packet accepted from a client, in bytes (MySQL's `max_allowed_packet`).
    pub max_allowed_packet: usize,
    /// How long shutdown waits for in-flight statements before stopping them.
    pub shutdown_timeout_secs: u64,
    /// A client must log in within this many seconds of connecting
    /// (MySQL's `connect_timeout`); until it does it holds no session slot.
    pub connect_timeout_secs: u64,
    /// After this many failed logins in a row from one address, each
    /// further attempt from it waits before its answer (0: never).
    pub failed_login_threshold: u32,
    /// … `failed_login_delay_ms` for the first, one more for each after …
    pub failed_login_delay_ms: u64,
    /// … up to this long.
    pub failed_login_max_delay_ms: u64,
    /// Threads of the query engine's runtime, where the parts of analytic
    /// queries run (0: one per core). Statements themselves run on a
    /// thread per connection.
    pub query_threads: usize,
    /// Log filter in `tracing` syntax, e.g. `info` or `duet_server=debug,info`.
    pub log: String,
    /// Accounts that may log in.
    pub users: Vec<User>,
    /// Space of the data directory's filesystem kept free of new data, in
    /// MiB (at most a tenth of the filesystem; 0: no guard). Below it the
    /// node refuses writes with error 1021 until space is freed.
    pub reserve_space_mb: u64,
    /// This node's id in the cluster (and its peer id in every region).
    pub node_id: u64,
    /// Address of the Raft listener (bound only when the cluster has more than one node).
    pub raft_addr: String,
    /// The founding voters, `1=HOST:PORT,2=HOST:PORT,…` (their Raft
    /// addresses); empty means a single node. A node whose id is not listed
    /// joins the running cluster of those founders.
    pub initial_cluster: String,
    /// Messages from a cluster with another id are refused.
    pub cluster_id: u64,
    /// The Raft address of any member of a running cluster: this node asks
    /// it to be admitted (`--join`), then receives regions from the
    /// placement driver. Empty: found a cluster (`initial_cluster`) or run
    /// alone.
    pub join: String,
    /// `row`: this node holds voters (and their columnar learners);
    /// `analytics`: only columnar learners, placed by the placement driver
    /// (such a node joins a running cluster).
    pub role: String,
    /// Voters per region, on distinct row stores (capped at their number).
    pub max_replicas: usize,
    /// A store silent this long is `down`: each region with a replica there
    /// gets a new one elsewhere.
    pub max_store_down_time_secs: u64,
    /// A region with fewer keys than this merges into a neighbour (0:
    /// `region_split_keys / 20`).
    pub region_merge_keys: u64,
    /// A region split or merged less than this long ago is not merged.
    pub split_merge_interval_secs: u64,
    /// A replica that has known no leader this long asks the other nodes
    /// whether it was removed or merged away while this node was away (0:
    /// never).
    pub max_leader_missing_secs: u64,
    /// How often every store reports itself and the regions it leads to the
    /// placement driver (which answers with the steps to take).
    pub pd_heartbeat_ms: u64,
    /// Old versions are kept this long; transactions must not run longer.
    pub gc_life_time_secs: u64,
    /// How often the region leader collects old versions (0: never).
    pub gc_interval_secs: u64,
    /// A region holding more keys than this splits in two (0: never).
    pub region_split_keys: u64,
    /// … or more bytes of data (keys and values of every version) than
    /// this (0: never by size).
    pub region_split_bytes: u64,
    /// How often region leaders check whether their region should split.
    pub split_check_interval_secs: u64,
    /// The columnar replica merges a table's recent versions into its
    /// stable layer once it holds this many (or a quarter of the table).
    pub columnar_delta_limit: usize,
    /// … or once its delta takes this many bytes of memory, however large
    /// the table.
    pub columnar_delta_bytes: usize,
    /// Rows per stable chunk of the columnar replica (the unit of min/max
    /// pruning).
    pub columnar_chunk_rows: usize,
    /// How long a columnar read waits for the replica to apply what the
    /// row store has, before it fails with error 9012.
    pub columnar_read_wait_ms: u64,
    /// How often the columnar replica writes a checkpoint (a restart,
    /// even after a crash, loads it and replays the log from there; 0:
    /// only at a clean stop).
    pub columnar_checkpoint_secs: u64,
    /// How often the node analyzes the tables its writes made stale (the
    /// router's statistics; 0: only `ANALYZE TABLE`).
    pub auto_analyze_interval_secs: u64,
}

/// A MySQL account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The password in plain text; empty means none.
    #[serde(default)]
    pub password: String,
    /// Where the account may connect from: `localhost` (loopback addresses
    /// only), `%` (anywhere) or one IP address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Whether the account administers the instance: it may `KILL` any
    /// connection and take the one connection kept beyond
    /// `max_connections`. Unset: only `root` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
}

impl User {
    /// Whether the account administers the instance (see `admin`).
    pub fn is_admin(&self) -> bool {
        self.admin.unwrap_or(self.name == "root")
    }
}

fn default_host() -> String {
    "localhost".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./duet-data"),
            mysql_addr: "127.0.0.1:4000".into(),
            status_addr: "127.0.0.1:10080".into(),
            max_connections: 1000,
            max_allowed_packet: 64 << 20,
            shutdown_timeout_secs: 10,
            connect_timeout_secs: 10,
            failed_login_threshold: 3,
            failed_login_delay_ms: 1000,
            failed_login_max_delay_ms: 30_000,
            query_threads: 0,
            log: "info".into(),
            node_id: 1,
            raft_addr: "127.0.0.1:20160".into(),
            initial_cluster: String::new(),
            cluster_id: 1,
            join: String::new(),
            role: "row".into(),
            max_replicas: 3,
            max_store_down_time_secs: 1800,
            region_merge_keys: 0,
            split_merge_interval_secs: 3600,
            max_leader_missing_secs: 120,
            pd_heartbeat_ms: 2000,
            gc_life_time_secs: 600,
            gc_interval_secs: 600,
            region_split_keys: 500_000,
            region_split_bytes: 96 << 20,
            split_check_interval_secs: 10,
            columnar_delta_limit: 65_536,
            columnar_delta_bytes: 128 << 20,
            columnar_chunk_rows: 65_536,
            columnar_read_wait_ms: 10_000,
            columnar_checkpoint_secs: 60,
            auto_analyze_interval_secs: 60,
            reserve_space_mb: 1024,
            users: vec![User {
                name: "root".into(),
                password: String::new(),
                host: default_host(),
                admin: None,
            }],
        }
    }
}

/// The keys `DUET_<KEY>` environment variables may set.
const ENV_KEYS: &[&str] = &[
    "data_dir",
    "mysql_addr",
    "status_addr",
    "max_connections",
    "max_allowed_packet",
    "shutdown_timeout_secs",
    "connect_timeout_secs",
    "failed_login_threshold",
    "failed_login_delay_ms",
    "failed_login_max_delay_ms",
    "query_threads",
    "log",
    "node_id",
    "raft_addr",
    "initial_cluster",
    "cluster_id",
    "join",
    "role",
    "max_replicas",
    "max_store_down_time_secs",
    "region_merge_keys",
    "split_merge_interval_secs",
    "max_leader_missing_secs",
    "pd_heartbeat_ms",
    "gc_life_time_secs",
    "gc_interval_secs",
    "region_split_keys",
    "region_split_bytes",
    "split_check_interval_secs",
    "columnar_delta_limit",
    "columnar_delta_bytes",
    "columnar_chunk_rows",
    "columnar_read_wait_ms",
    "columnar_checkpoint_secs",
    "auto_analyze_interval_secs",
    "reserve_space_mb",
];

impl Config {
    /// Defaults, overlaid by `file` (if given, it must exist) and by `DUET_*`
    /// environment variables (`DUET_MYSQL_ADDR=…`, `DUET_DATA_DIR=…`).
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "config file {} not found",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only the scalar keys: other DUET_* variables (DUET_BIN, …) belong to
        // other tools and must not trip `deny_unknown_fields`.
        figment = figment.merge(Env::prefixed("DUET_").only(ENV_KEYS));
        figment.extract().map_err(|e| Error::Config(e.to_string()))
    }

    /// Parses a TOML document over the defaults (no environment).
    pub fn from_toml(text: &str) -> Result<Config> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// Checks that the configuration can run.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        for (name, addr) in [
            ("mysql_addr", &self.mysql_addr),
            ("status_addr", &self.status_addr),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                return bad(format!("{name} = {addr:?} is not an IP:PORT address"));
            }
        }
        if self.mysql_addr == self.status_addr && !self.mysql_addr.ends_with(":0") {
            return bad("mysql_addr and status_addr must differ".into());
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir must not be empty".into());
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1".into());
        }
        if self.connect_timeout_secs == 0 {
            return bad("connect_timeout_secs must be at least 1".into());
        }
        if !(1024..=1 << 30).contains(&self.max_allowed_packet) {
            return bad("max_allowed_packet must be between 1024 and 1073741824".into());
        }
        if self.raft_addr.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "raft_addr = {:?} is not an IP:PORT address",
                self.raft_addr
            ));
        }
        if self.node_id == 0 {
            return bad("node_id must be at least 1".into());
        }
        match self.role.as_str() {
            "row" => {}
            "analytics" if self.join.is_empty() => {
                return bad(
                    "role = \"analytics\" needs join: an analytics node joins a running cluster"
                        .into(),
                );
            }
            "analytics" => {}
            other => {
                return bad(format!(
                    "role = {other:?} is neither \"row\" nor \"analytics\""
                ));
            }
        }
        // A node_id outside initial_cluster is a node joining a running
        // cluster of those founders (the placement driver admits it).
        let founders = self.cluster()?;
        if !self.join.is_empty() {
            if self.join.parse::<SocketAddr>().is_err() {
                return bad(format!(
                    "join = {:?} is not the IP:PORT Raft address of a member",
                    self.join
                ));
            }
            if !founders.is_empty() {
                return bad("set either join or initial_cluster, not both".into());
            }
            if self.join == self.raft_addr {
                return bad("join names this node's own raft_addr".into());
            }
        }
        if self.max_replicas == 0 {
            return bad("max_replicas must be at least 1".into());
        }
        if self.max_store_down_time_secs == 0 {
            return bad("max_store_down_time_secs must be at least 1".into());
        }
        if self.pd_heartbeat_ms < 10 {
            return bad("pd_heartbeat_ms must be at least 10".into());
        }
        if self.users.is_empty() {
            return bad("at least one user is needed".into());
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() {
                return bad("a user has an empty name".into());
            }
            if u.host != "localhost" && u.host != "%" && u.host.parse::<IpAddr>().is_err() {
                return bad(format!(
                    "user {:?}: host {:?} is not localhost, % or an IP",
                    u.name, u.host
                ));
            }
            if self.users[..i]
                .iter()
                .any(|o| o.name == u.name && o.host == u.host)
            {
                return bad(format!("user {:?}@{:?} is listed twice", u.name, u.host));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Whether this node is part of a cluster (founding it or joining it),
    /// not the embedded single node.
    pub fn clustered(&self) -> bool {
        !self.initial_cluster.trim().is_empty() || !self.join.is_empty()
    }

    /// The placement driver's knobs.
    pub fn placement(&self) -> duet_placement::Config {
        let beat = self.pd_heartbeat_ms;
        duet_placement::Config {
            max_replicas: self.max_replicas,
            max_store_down_time_ms: self.max_store_down_time_secs.saturating_mul(1000),
            region_merge_keys: match self.region_merge_keys {
                0 => self.region_split_keys / 20,
                n => n,
            },
            region_split_keys: self.region_split_keys,
            split_merge_interval_ms: self.split_merge_interval_secs.saturating_mul(1000),
            // Every store has reported twice before anything is decided.
            warm_up_ms: beat.saturating_mul(3),
            ..duet_placement::Config::default()
        }
    }

    /// The founding voters from `initial_cluster` (empty for a single node).
    pub fn cluster(&self) -> Result<BTreeMap<u64, SocketAddr>> {
        let mut out = BTreeMap::new();
        for part in self
            .initial_cluster
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let parsed = part.split_once('=').and_then(|(id, addr)| {
                Some((
                    id.trim().parse::<u64>().ok()?,
                    addr.trim().parse::<SocketAddr>().ok()?,
                ))
            });
            match parsed {
                Some((id, addr)) if id > 0 && out.insert(id, addr).is_none() => {}
                _ => {
                    return Err(Error::Config(format!(
                        "initial_cluster: {part:?} is not ID=IP:PORT (ids unique, from 1)"
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_node() {
        let c = Config::default();
        assert_eq!(c.mysql_addr, "127.0.0.1:4000");
        assert_eq!(c.status_addr, "127.0.0.1:10080");
        assert_eq!(c.data_dir, PathBuf::from("./duet-data"));
        c.validate().unwrap();
    }

    #[test]
    fn template_parses_and_matches_defaults() {
        let text = include_str!("../../etc/duet.toml");
        let c = Config::from_toml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c,
            Config::default(),
            "etc/duet.toml should spell out the defaults"
        );
    }

    #[test]
    fn file_overrides_and_unknown_keys_fail() {
        let c = Config::from_toml(
            "mysql_addr = '127.0.0.1:4100'\n[[users]]\nname = 'app'\npassword = 'pw'\nhost = '%'\n",
        )
        .unwrap();
        assert_eq!(c.mysql_addr, "127.0.0.1:4100");
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].host, "%");
        assert!(Config::from_toml("no_such_key = 1").is_err());
    }

    #[test]
    fn initial_cluster_parses_and_may_omit_a_joining_node() {
        let mut c = Config {
            initial_cluster: "1=127.0.0.1:20161, 2=127.0.0.1:20162,3=127.0.0.1:20163".into(),
            node_id: 2,
            ..Config::default()
        };
        c.validate().unwrap();
        assert_eq!(c.cluster().unwrap().len(), 3);
        c.node_id = 4;
        c.validate().expect("node 4 joins the founders");
        c.initial_cluster = "1=nowhere".into();
        assert!(c.validate().is_err());
        c.initial_cluster = "1=127.0.0.1:1,1=127.0.0.1:2".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn validate_refuses_bad_values() {
        let mut c = Config {
            mysql_addr: "nowhere".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        c = Config {
            max_allowed_packet: 10,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        c = Config {
            status_addr: "127.0.0.1:4000".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        c = Config::default();
        c.users[0].host = "somewhere".into();
        assert!(c.validate().is_err());
    }
}
