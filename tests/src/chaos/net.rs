//! Hosts of their own for the nodes of a fault run: one network namespace
//! per node, joined to a bridge in the harness's namespace by a veth pair,
//! so that a node can be cut off from some nodes and not others, or lose
//! a share of its packets, while the harness (the clients) still reaches
//! every node. Faults are `iptables` rules inside the namespaces; healing
//! flushes them. Everything is named after the run (`dc{tag}…`) and
//! removed on drop; a run first removes what a dead run of the same tag
//! left. Needs root (as the test machines give).

use std::io;
use std::process::{Command, Output};

/// The namespaces, veths and bridge of one run.
pub struct Net {
    tag: String,
    /// The third octet of `10.77.x.0/24`.
    subnet: u8,
    hosts: usize,
}

fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

impl Net {
    /// Whether this machine lets the harness make namespaces (root, with
    /// `ip` and `iptables`).
    pub fn available() -> bool {
        // Unique per call: runs in one process may ask at once.
        static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let probe = format!("dcp{}x{n}", std::process::id() % 100_000);
        let made = run("ip", &["netns", "add", &probe]).is_ok();
        if made {
            let _ = run("ip", &["netns", "del", &probe]);
        }
        made && run("iptables", &["-S", "FORWARD"]).is_ok()
    }

    /// Hosts `1..=hosts` for run `tag` (a few letters or digits, unique
    /// among the runs going on at once), on `10.77.{subnet}.0/24`.
    pub fn create(tag: &str, subnet: u8, hosts: usize) -> io::Result<Net> {
        let net = Net {
            tag: tag.to_string(),
            subnet,
            hosts,
        };
        net.remove();
        let bridge = net.bridge();
        let bridge_addr = format!("{}/24", net.harness_addr());
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["addr", "add", &bridge_addr, "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        // A host engine (Docker) may drop bridged traffic it does not know.
        run(
            "iptables",
            &[
                "-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
            ],
        )?;
        for i in 1..=hosts {
            let (ns, outer, inner) = (net.namespace(i), net.outer(i), net.inner(i));
            let addr = format!("{}/24", net.addr(i));
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ],
            )?;
            run("ip", &["link", "set", &inner, "netns", &ns])?;
            net.inside(i, "ip", &["addr", "add", &addr, "dev", &inner])?;
            net.inside(i, "ip", &["link", "set", &inner, "up"])?;
            net.inside(i, "ip", &["link", "set", "lo", "up"])?;
            run("ip", &["link", "set", &outer, "master", &bridge])?;
            run("ip", &["link", "set", &outer, "up"])?;
        }
        Ok(net)
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.{}.{i}", self.subnet)
    }

    /// The harness's address on the bridge.
    pub fn harness_addr(&self) -> String {
        format!("10.77.{}.254", self.subnet)
    }

    /// A command that runs `program` inside host `i`.
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespace(i)]).arg(program);
        c
    }

    /// Drops every packet host `to` receives from host `from`.
    pub fn cut(&self, from: usize, to: usize) -> io::Result<()> {
        let source = self.addr(from);
        self.inside(
            to,
            "iptables",
            &["-A", "INPUT", "-s", &source, "-j", "DROP"],
        )?;
        Ok(())
    }

    /// Cuts `a` and `b` off from each other, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) -> io::Result<()> {
        for &x in a {
            for &y in b {
                self.cut(x, y)?;
                self.cut(y, x)?;
            }
        }
        Ok(())
    }

    /// Host `i` loses `percent` of the packets other nodes send it (the
    /// harness's included).
    pub fn lossy(&self, i: usize, percent: u32) -> io::Result<()> {
        let p = format!("{:.2}", f64::from(percent.min(100)) / 100.0);
        let args = [
            "-A",
            "INPUT",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p,
            "-j",
            "DROP",
        ];
        self.inside(i, "iptables", &args)?;
        Ok(())
    }

    /// Host `i`'s links, both ways, carry 2 Mbit/s through a token bucket
    /// with a 256 KiB queue: what exceeds the rate waits (a delay of up to
    /// a second), it is not dropped while the queue has room. The kernels
    /// this runs on may lack `netem`; `tbf` is always there.
    pub fn slow(&self, i: usize) -> io::Result<()> {
        let shape = [
            "qdisc", "replace", "dev", "", "root", "tbf", "rate", "2mbit", "burst", "32kb",
            "limit", "256kb",
        ];
        let (outer, inner) = (self.outer(i), self.inner(i));
        let mut out = shape;
        out[3] = &outer;
        run("tc", &out)?;
        let mut back = shape;
        back[3] = &inner;
        self.inside(i, "tc", &back)?;
        Ok(())
    }

    /// Removes every cut, loss and slow link.
    pub fn heal(&self) -> io::Result<()> {
        for i in 1..=self.hosts {
            self.inside(i, "iptables", &["-F", "INPUT"])?;
            // A link with no shaping has no root qdisc of ours to delete.
            let _ = run("tc", &["qdisc", "del", "dev", &self.outer(i), "root"]);
            let _ = self.inside(i, "tc", &["qdisc", "del", "dev", &self.inner(i), "root"]);
        }
        Ok(())
    }

    fn inside(&self, i: usize, program: &str, args: &[&str]) -> io::Result<Output> {
        let ns = self.namespace(i);
        let mut all = vec!["netns", "exec", &ns, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn bridge(&self) -> String {
        format!("dc{}br", self.tag)
    }

    fn namespace(&self, i: usize) -> String {
        format!("dc{}n{i}", self.tag)
    }

    fn outer(&self, i: usize) -> String {
        format!("dc{}v{i}", self.tag)
    }

    fn inner(&self, i: usize) -> String {
        format!("dc{}e{i}", self.tag)
    }

    /// Removes whatever of this run exists (errors ignored: parts may be
    /// missing).
    fn remove(&self) {
        // A run killed before it cleaned up leaves a bridge holding this
        // subnet: the harness's packets would go to its dead hosts (and be
        // refused there). Such strays go first.
        let harness = format!("{}/32", self.harness_addr());
        if let Ok(out) = run("ip", &["-o", "-4", "addr", "show", "to", &harness]) {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(name) = line.split_whitespace().nth(1) {
                    let _ = run("ip", &["link", "del", name]);
                }
            }
        }
        for i in 1..=self.hosts.max(9) {
            let _ = run("ip", &["netns", "del", &self.namespace(i)]);
            let _ = run("ip", &["link", "del", &self.outer(i)]);
        }
        let bridge = self.bridge();
        while run(
            "iptables",
            &[
                "-D", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
            ],
        )
        .is_ok()
        {}
        let _ = run("ip", &["link", "del", &bridge]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}
