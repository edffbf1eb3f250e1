//! Three `duet serve` processes on loopback, founded with `--initial-cluster`:
//! they elect a leader, survive `kill -9` of the leader with a new one within
//! seconds, take the killed node back (it catches up), and all restart from
//! disk. A fourth process joins as a learner through `POST
//! /admin/membership`, catches up, never counts in the quorum, then becomes a
//! voter and is removed. Observed through each node's `GET /status`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::duet_binary;
use duet_tests::{free_port, http_get, http_post_json};

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) child: Option<Child>,
    pub(crate) dir: PathBuf,
    pub(crate) mysql: u16,
    pub(crate) status: u16,
    /// Extra `DUET_*` settings.
    pub(crate) env: Vec<(String, String)>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Node {
    /// A node not started yet, in `root/n{id}`, on free ports.
    pub(crate) fn new(root: &std::path::Path, id: u64, env: &[(String, String)]) -> Node {
        Node {
            id,
            child: None,
            dir: root.join(format!("n{id}")),
            mysql: free_port(),
            status: free_port(),
            env: env.to_vec(),
        }
    }

    pub(crate) fn start(&mut self, cluster: &str, raft_port: u16) {
        self.spawn(raft_port, &["--initial-cluster", cluster]);
    }

    /// Starts `duet serve` on the node's ports with `args` added.
    pub(crate) fn spawn(&mut self, raft_port: u16, args: &[&str]) {
        let child = self.command(raft_port, args).spawn().expect("duet starts");
        self.child = Some(child);
    }

    /// The `duet serve` command of this node, with `args` added.
    pub(crate) fn command(&self, raft_port: u16, args: &[&str]) -> Command {
        let mut command = Command::new(duet_binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--node-id", &self.id.to_string()])
            .args(["--mysql-addr", &format!("127.0.0.1:{}", self.mysql)])
            .args(["--status-addr", &format!("127.0.0.1:{}", self.status)])
            .args(["--raft-addr", &format!("127.0.0.1:{raft_port}")])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        // The node's log beside its data directory, for a failing test.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"));
        match log.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((out, err)) => command.stdout(out).stderr(err),
            Err(_) => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        command
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub(crate) fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(s) = c.try_wait().unwrap() {
                    assert_eq!(s.code(), Some(0), "node {} exits cleanly", self.id);
                    return;
                }
                assert!(Instant::now() < deadline, "node {} did not stop", self.id);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// (role, leader, term, commit, applied) of region 1, if the node answers.
    fn region(&self) -> Option<(String, Option<u64>, u64, u64, u64)> {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.status).parse().unwrap();
        let (code, body) = http_get(addr, "/status").ok()?;
        if code != 200 {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        let r = &doc["regions"][0];
        Some((
            r["role"].as_str()?.to_string(),
            r["leader"].as_u64(),
            r["term"].as_u64()?,
            r["commit_index"].as_u64()?,
            r["applied_index"].as_u64()?,
        ))
    }
}

/// Waits until every node in `ids` names the same leader, which is one of
/// them and says so; returns its id.
fn agreed_leader(nodes: &[Node], ids: &[u64], within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let views: Vec<_> = ids
            .iter()
            .map(|id| nodes[*id as usize - 1].region())
            .collect();
        if let Some(Some((_, Some(leader), _, _, _))) = views.first()
            && ids.contains(leader)
            && views
                .iter()
                .all(|v| matches!(v, Some((_, Some(l), _, _, _)) if l == leader))
            && matches!(&views[ids.iter().position(|i| i == leader).unwrap()], Some((role, ..)) if role == "leader")
        {
            return *leader;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader among {ids:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until node `id` has applied at least `index`.
fn caught_up(nodes: &[Node], id: u64, index: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some((_, _, _, _, applied)) = nodes[id as usize - 1].region()
            && applied >= index
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} did not reach index {index}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_processes_elect_fail_over_and_restart() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, raft_ports, cluster) = founders(root.path(), &[]);
    nodes.truncate(3);
    let first = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(30));

    // kill -9 the leader: the other two agree on a new one within seconds.
    nodes[first as usize - 1].kill();
    let started = Instant::now();
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != first).collect();
    let second = agreed_leader(&nodes, &survivors, Duration::from_secs(15));
    let failover = started.elapsed();
    assert_ne!(second, first);
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let (_, _, term, commit, _) = nodes[second as usize - 1].region().unwrap();

    // The killed node comes back and catches up.
    nodes[first as usize - 1].start(&cluster, raft_ports[first as usize - 1]);
    caught_up(&nodes, first, commit, Duration::from_secs(20));
    assert_eq!(
        agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(20)),
        second
    );

    // Everyone stops cleanly and restarts from disk.
    for n in nodes.iter_mut() {
        n.terminate();
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        n.start(&cluster, raft_ports[i]);
    }
    let third = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(30));
    let (_, _, term_after, commit_after, _) = nodes[third as usize - 1].region().unwrap();
    assert!(term_after > term, "a new term after restart");
    assert!(commit_after > commit, "the log survived and grew");
    for id in [1, 2, 3] {
        caught_up(&nodes, id, commit_after, Duration::from_secs(20));
    }
    eprintln!("cluster: failover to a new leader took {failover:?}");
}

/// Three founders on fresh ports.
pub(crate) fn founders(
    root: &std::path::Path,
    env: &[(String, String)],
) -> (Vec<Node>, Vec<u16>, String) {
    let raft_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let cluster = raft_ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (1..=4).map(|id| Node::new(root, id, env)).collect();
    for (i, n) in nodes.iter_mut().take(3).enumerate() {
        n.start(&cluster, raft_ports[i]);
    }
    (nodes, raft_ports, cluster)
}

/// `POST /admin/membership` on `node`; returns (status code, body).
fn change(node: &Node, change: &str, id: u64, raft_addr: Option<&str>) -> (u16, String) {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    let json = match raft_addr {
        Some(a) => format!(r#"{{"change":"{change}","node_id":{id},"raft_addr":"{a}"}}"#),
        None => format!(r#"{{"change":"{change}","node_id":{id}}}"#),
    };
    http_post_json(addr, "/admin/membership", &json).unwrap()
}

/// The voters and learners of region 1 as `node` sees them: the nodes'
/// own stores (each node's columnar learner store, whose id has
/// `LEARNER_STORE_BIT`, is left out; see `columnar_learners`).
fn members(node: &Node) -> Option<(Vec<u64>, Vec<u64>)> {
    let (voters, learners) = all_members(node)?;
    let own = |ids: Vec<u64>| -> Vec<u64> {
        ids.into_iter()
            .filter(|id| *id & duet_raft::store::LEARNER_STORE_BIT == 0)
            .collect()
    };
    Some((own(voters), own(learners)))
}

/// The nodes whose columnar learner store is a learner of region 1, as
/// `node` sees it.
fn columnar_learners(node: &Node) -> Option<Vec<u64>> {
    let (_, learners) = all_members(node)?;
    Some(
        learners
            .into_iter()
            .filter(|id| *id & duet_raft::store::LEARNER_STORE_BIT != 0)
            .map(duet_raft::store::node_of)
            .collect(),
    )
}

/// Every voter and learner of region 1 as `node` sees them.
fn all_members(node: &Node) -> Option<(Vec<u64>, Vec<u64>)> {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    let (_, body) = http_get(addr, "/status").ok()?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default()
    };
    let r = doc["regions"].get(0)?;
    Some((ids(&r["voters"]), ids(&r["learners"])))
}

#[test]
fn a_fourth_process_joins_as_a_learner_never_votes_then_becomes_a_voter() {
    let root = tempfile::tempdir().unwrap();
    // Placement idle (one heartbeat an hour): the membership here is made
    // by hand, which the placement driver would otherwise undo.
    let idle = [("DUET_PD_HEARTBEAT_MS".to_string(), "3600000".to_string())];
    let (mut nodes, _, cluster) = founders(root.path(), &idle);
    let leader = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(30));
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    // Node 4 is not a founder: it starts with no region.
    let learner_port = free_port();
    let learner_addr = format!("127.0.0.1:{learner_port}");
    nodes[3].start(&cluster, learner_port);
    let status: SocketAddr = format!("127.0.0.1:{}", nodes[3].status).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Ok((200, body)) = http_get(status, "/status") {
            break body;
        }
        assert!(Instant::now() < deadline, "node 4 serves /status");
        std::thread::sleep(Duration::from_millis(100));
    };
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["regions"],
        serde_json::json!([]),
        "no region before it is added"
    );

    // Bad requests are refused with 400.
    assert_eq!(change(&nodes[0], "promote", 4, None).0, 400);
    assert_eq!(change(&nodes[0], "add_learner", 4, Some("nowhere")).0, 400);

    // Added as a learner through a follower (forwarded to the leader).
    let (code, body) = change(
        &nodes[follower as usize - 1],
        "add_learner",
        4,
        Some(&learner_addr),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(members(&nodes[0]).unwrap(), (vec![1, 2, 3], vec![4]));
    // Every founder's columnar learner belongs to the region, and node 4
    // adds its own once it holds the region.
    let deadline = Instant::now() + Duration::from_secs(20);
    while columnar_learners(&nodes[0]) != Some(vec![1, 2, 3, 4]) {
        assert!(
            Instant::now() < deadline,
            "node 4 adds its columnar learner: {:?}",
            columnar_learners(&nodes[0])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, _, _, commit, _) = nodes[leader as usize - 1].region().unwrap();
    caught_up(&nodes, 4, commit, Duration::from_secs(20));
    assert_eq!(nodes[3].region().unwrap().0, "learner");

    // The learner is not in the quorum: with it and one founder down, the
    // other two founders still commit (a membership change needs a commit).
    let down = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    nodes[3].kill();
    nodes[down as usize - 1].kill();
    let alive: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != down).collect();
    let leader = agreed_leader(&nodes, &alive, Duration::from_secs(20));
    let (code, body) = change(&nodes[leader as usize - 1], "remove", 4, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        members(&nodes[leader as usize - 1]).unwrap(),
        (vec![1, 2, 3], vec![])
    );

    // Back, then promoted straight to voter; then removed again.
    nodes[down as usize - 1].start(&cluster, free_port_of(&cluster, down));
    nodes[3].start(&cluster, learner_port);
    let (code, body) = change(
        &nodes[leader as usize - 1],
        "add_voter",
        4,
        Some(&learner_addr),
    );
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while members(&nodes[3]) != Some((vec![1, 2, 3, 4], vec![])) {
        assert!(
            Instant::now() < deadline,
            "node 4 learns it is a voter: {:?}",
            members(&nodes[3])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = change(&nodes[3], "remove", 4, None);
    assert_eq!(code, 200, "{body}");
    let leader = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(20));
    assert_eq!(
        members(&nodes[leader as usize - 1]).unwrap(),
        (vec![1, 2, 3], vec![])
    );
}

/// The raft port of founder `id` in an `--initial-cluster` string.
fn free_port_of(cluster: &str, id: u64) -> u16 {
    cluster
        .split(',')
        .find_map(|p| {
            let (i, addr) = p.split_once('=')?;
            (i.parse::<u64>().ok()? == id).then(|| addr.rsplit(':').next()?.parse().ok())?
        })
        .expect("founder in the cluster")
}

/// A runtime for the MySQL clients of a test.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs SQL on node `n` (a fresh connection), retrying while the cluster
/// elects or the node starts; returns the rows as text.
pub(crate) fn sql(rt: &tokio::runtime::Runtime, node: &Node, statement: &str) -> Vec<Vec<String>> {
    use mysql_async::prelude::*;
    let url = format!("mysql://root@127.0.0.1:{}/", node.mysql);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt: Result<Vec<Vec<String>>, mysql_async::Error> = rt.block_on(async {
            let mut c = mysql_async::Conn::from_url(url.as_str()).await?;
            let rows: Vec<mysql_async::Row> = c.query(statement).await?;
            let _ = c.disconnect().await;
            Ok(rows
                .into_iter()
                .map(|r| {
                    r.unwrap()
                        .into_iter()
                        .map(|v| match v {
                            mysql_async::Value::Bytes(b) => {
                                String::from_utf8_lossy(&b).into_owned()
                            }
                            other => other.as_sql(true),
                        })
                        .collect()
                })
                .collect())
        });
        match attempt {
            Ok(rows) => return rows,
            Err(e) if Instant::now() < deadline => {
                eprintln!("node {}: {statement}: {e}; retrying", node.id);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("node {}: {statement}: {e}", node.id),
        }
    }
}

fn count(rt: &tokio::runtime::Runtime, node: &Node) -> u64 {
    sql(rt, node, "SELECT COUNT(*) FROM app.t")[0][0]
        .parse()
        .unwrap()
}

#[test]
fn acknowledged_rows_survive_leader_loss_and_full_restart() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, raft_ports, cluster) = founders(root.path(), &[]);
    let leader = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(30));
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let via = &nodes[follower as usize - 1];
    sql(&rt, via, "CREATE DATABASE app");
    sql(
        &rt,
        via,
        "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
    );
    for i in 0..30 {
        sql(
            &rt,
            via,
            &format!("INSERT INTO app.t VALUES ({i}, 'row {i}')"),
        );
    }
    // Written through a follower, read on every node.
    for n in &nodes[..3] {
        assert_eq!(count(&rt, n), 30, "node {} sees every row", n.id);
    }

    // kill -9 the leader: the survivors keep accepting writes, losing none.
    nodes[leader as usize - 1].kill();
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    for i in 30..60 {
        let node = &nodes[survivors[i % 2] as usize - 1];
        sql(
            &rt,
            node,
            &format!("INSERT IGNORE INTO app.t VALUES ({i}, 'row {i}')"),
        );
    }
    for id in &survivors {
        assert_eq!(count(&rt, &nodes[*id as usize - 1]), 60);
    }

    // The killed node comes back and serves everything.
    nodes[leader as usize - 1].start(&cluster, raft_ports[leader as usize - 1]);
    assert_eq!(count(&rt, &nodes[leader as usize - 1]), 60);

    // Every node stops and restarts from disk: all rows are there.
    for n in nodes.iter_mut().take(3) {
        n.terminate();
    }
    for (i, n) in nodes.iter_mut().take(3).enumerate() {
        n.start(&cluster, raft_ports[i]);
    }
    for n in &nodes[..3] {
        assert_eq!(count(&rt, n), 60, "node {} after restart", n.id);
    }
    assert_eq!(
        sql(&rt, &nodes[0], "SELECT v FROM app.t WHERE id = 45"),
        vec![vec!["row 45".to_string()]]
    );
}

/// A transaction that runs far longer than `gc_life_time` on any node
/// keeps reading its snapshot: each node publishes its oldest running
/// transaction, and the GC leader's safe point stays below all of them.
#[test]
fn gc_never_collects_what_a_running_transaction_on_any_node_reads() {
    use mysql_async::prelude::*;
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env = [
        ("DUET_GC_LIFE_TIME_SECS".to_string(), "1".to_string()),
        ("DUET_GC_INTERVAL_SECS".to_string(), "1".to_string()),
    ];
    let (nodes, _, _) = founders(root.path(), &env);
    let leader = agreed_leader(&nodes, &[1, 2, 3], Duration::from_secs(30));
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let (on_leader, on_follower) = (&nodes[leader as usize - 1], &nodes[follower as usize - 1]);
    sql(&rt, on_leader, "CREATE DATABASE app");
    sql(
        &rt,
        on_leader,
        "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)",
    );
    sql(&rt, on_leader, "INSERT INTO app.t VALUES (1, 0)");
    // One long transaction on the GC leader, one on a follower.
    let readers: Vec<mysql_async::Conn> = [on_leader, on_follower]
        .iter()
        .map(|n| {
            rt.block_on(async {
                let url = format!("mysql://root@127.0.0.1:{}/", n.mysql);
                let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
                c.query_drop("BEGIN").await.unwrap();
                let v: Option<i64> = c
                    .query_first("SELECT v FROM app.t WHERE id = 1")
                    .await
                    .unwrap();
                assert_eq!(v, Some(0));
                c
            })
        })
        .collect();
    // Let the floors be published, then write newer versions for several
    // GC rounds, each of which would otherwise collect version 0.
    std::thread::sleep(Duration::from_secs(2));
    for i in 1..=5 {
        sql(
            &rt,
            on_leader,
            &format!("UPDATE app.t SET v = {i} WHERE id = 1"),
        );
        std::thread::sleep(Duration::from_millis(800));
    }
    for mut c in readers {
        rt.block_on(async {
            let v: Option<i64> = c
                .query_first("SELECT v FROM app.t WHERE id = 1")
                .await
                .unwrap();
            assert_eq!(v, Some(0), "the snapshot still reads its version");
            c.query_drop("COMMIT").await.unwrap();
            let v: Option<i64> = c
                .query_first("SELECT v FROM app.t WHERE id = 1")
                .await
                .unwrap();
            assert_eq!(v, Some(5));
        });
    }
}
