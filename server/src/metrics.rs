//! Prometheus metrics of one node, served as text on `GET /metrics`.

use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The node's metrics and the registry that exports them.
pub struct Metrics {
    registry: Registry,
    pub connections_total: IntCounter,
    pub connections_active: IntGauge,
    pub connections_refused: IntCounter,
    pub auth_failures: IntCounter,
    statements: IntCounterVec,
    statement_seconds: Histogram,
    raft_index: IntGaugeVec,
    raft_leader: IntGaugeVec,
    columnar_visible_seconds: Histogram,
    columnar_lag: IntGaugeVec,
    columnar_stopped: IntGauge,
    store_regions: IntGauge,
    store_leaders: IntGauge,
    region_cache_misses: IntCounter,
    txn_commits: IntCounterVec,
    placement_operators: IntGaugeVec,
    placement_stores: IntGaugeVec,
    placement_short: IntGauge,
    disk_full: IntGauge,
    disk_available: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("duet".into()), None).expect("valid prefix");
        let m = Metrics {
            connections_total: IntCounter::new("connections_total", "MySQL connections accepted")
                .expect("valid"),
            connections_active: IntGauge::new("connections_active", "MySQL connections open now")
                .expect("valid"),
            connections_refused: IntCounter::new(
                "connections_refused_total",
                "connections refused by max_connections",
            )
            .expect("valid"),
            auth_failures: IntCounter::new("auth_failures_total", "failed logins").expect("valid"),
            statements: IntCounterVec::new(
                Opts::new("statements_total", "statements executed"),
                &["result"],
            )
            .expect("valid"),
            statement_seconds: Histogram::with_opts(
                HistogramOpts::new("statement_duration_seconds", "statement latency")
                    .buckets(prometheus::exponential_buckets(0.0001, 4.0, 10).expect("valid")),
            )
            .expect("valid"),
            raft_index: IntGaugeVec::new(
                Opts::new("raft_index", "per region: term, commit and applied index"),
                &["region", "kind"],
            )
            .expect("valid"),
            raft_leader: IntGaugeVec::new(
                Opts::new("raft_is_leader", "per region: 1 where this node leads"),
                &["region"],
            )
            .expect("valid"),
            columnar_visible_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "columnar_commit_to_visible_seconds",
                    "time from a commit's timestamp to its rows' visibility on the columnar replica",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 16).expect("valid")),
            )
            .expect("valid"),
            columnar_lag: IntGaugeVec::new(
                Opts::new(
                    "columnar_applied_lag",
                    "per region: log entries applied by the row store but not yet by the columnar replica",
                ),
                &["region"],
            )
            .expect("valid"),
            columnar_stopped: IntGauge::new(
                "columnar_stopped",
                "1 when the columnar learner stopped on an entry it could not apply",
            )
            .expect("valid"),
            store_regions: IntGauge::new(
                "store_regions",
                "regions this node holds a replica of",
            )
            .expect("valid"),
            store_leaders: IntGauge::new("store_leaders", "regions this node leads")
                .expect("valid"),
            region_cache_misses: IntCounter::new(
                "region_cache_misses_total",
                "lookups of regions held elsewhere that the region cache could not answer",
            )
            .expect("valid"),
            txn_commits: IntCounterVec::new(
                Opts::new(
                    "txn_commits_total",
                    "transactions committed through this node, by phases (1: one-phase commit)",
                ),
                &["phases"],
            )
            .expect("valid"),
            placement_operators: IntGaugeVec::new(
                Opts::new(
                    "placement_operators",
                    "on the placement driver's node: scheduling operators started, finished and failed since it took over, by kind",
                ),
                &["event", "kind"],
            )
            .expect("valid"),
            placement_stores: IntGaugeVec::new(
                Opts::new(
                    "placement_stores",
                    "on the placement driver's node: stores by state (up, down, removing, removed)",
                ),
                &["state"],
            )
            .expect("valid"),
            placement_short: IntGauge::new(
                "placement_replicas_short",
                "on the placement driver's node: 1 when max_replicas exceeds the row stores up",
            )
            .expect("valid"),
            disk_full: IntGauge::new(
                "disk_full",
                "1 while the data directory is short of space and writes are refused",
            )
            .expect("valid"),
            disk_available: IntGauge::new(
                "disk_available_bytes",
                "free bytes of the data directory's filesystem",
            )
            .expect("valid"),
            registry,
        };
        m.register();
        m
    }

    fn register(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 20] = [
            Box::new(self.txn_commits.clone()),
            Box::new(self.disk_full.clone()),
            Box::new(self.disk_available.clone()),
            Box::new(self.placement_operators.clone()),
            Box::new(self.placement_stores.clone()),
            Box::new(self.placement_short.clone()),
            Box::new(self.store_regions.clone()),
            Box::new(self.store_leaders.clone()),
            Box::new(self.region_cache_misses.clone()),
            Box::new(self.columnar_stopped.clone()),
            Box::new(self.columnar_visible_seconds.clone()),
            Box::new(self.columnar_lag.clone()),
            Box::new(self.raft_index.clone()),
            Box::new(self.raft_leader.clone()),
            Box::new(self.connections_total.clone()),
            Box::new(self.connections_active.clone()),
            Box::new(self.connections_refused.clone()),
            Box::new(self.auth_failures.clone()),
            Box::new(self.statements.clone()),
            Box::new(self.statement_seconds.clone()),
        ];
        for c in collectors {
            self.registry.register(c).expect("metric names are unique");
        }
    }

    /// Records one statement's outcome and latency.
    pub fn observe_statement(&self, started: Instant, ok: bool) {
        self.statement_seconds
            .observe(started.elapsed().as_secs_f64());
        self.statements
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Records the Raft state of this node's regions (at scrape time).
    pub fn observe_regions(&self, regions: &[duet_raft::store::RegionStatus]) {
        self.store_regions.set(regions.len() as i64);
        let leaders = regions.iter().filter(|r| r.is_leader).count();
        self.store_leaders.set(leaders as i64);
        for r in regions {
            let region = r.region_id.to_string();
            for (kind, value) in [
                ("term", r.term),
                ("commit", r.commit_index),
                ("applied", r.applied_index),
            ] {
                self.raft_index
                    .with_label_values(&[region.as_str(), kind])
                    .set(value as i64);
            }
            self.raft_leader
                .with_label_values(&[region.as_str()])
                .set(i64::from(r.is_leader));
        }
    }

    /// Records the region cache's misses so far (a running count).
    pub fn observe_region_cache(&self, misses: u64) {
        let seen = self.region_cache_misses.get();
        self.region_cache_misses.inc_by(misses.saturating_sub(seen));
    }

    /// Records the node's commits so far (one-phase, two-phase).
    pub fn observe_commits(&self, (one, two): (u64, u64)) {
        for (phases, count) in [("1", one), ("2", two)] {
            let counter = self.txn_commits.with_label_values(&[phases]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
    }

    /// Records the placement driver's operator counts and store states
    /// (on the node running it).
    pub fn observe_placement(
        &self,
        counters: &duet_placement::schedulers::Counters,
        report: &duet_placement::ClusterReport,
    ) {
        for (event, counts) in [
            ("started", &counters.started),
            ("finished", &counters.finished),
            ("failed", &counters.failed),
        ] {
            for (kind, n) in counts {
                self.placement_operators
                    .with_label_values(&[event, kind])
                    .set(*n as i64);
            }
        }
        for state in ["up", "down", "removing", "removed"] {
            let n = (report.stores.iter())
                .filter(|s| s.state.name() == state)
                .count();
            self.placement_stores
                .with_label_values(&[state])
                .set(n as i64);
        }
        self.placement_short
            .set(i64::from(!report.warnings.is_empty()));
    }

    /// Records the disk guard's state and the free space it sees.
    pub fn observe_disk(&self, full: bool, available: Option<u64>) {
        self.disk_full.set(i64::from(full));
        if let Some(bytes) = available {
            self.disk_available
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Records the columnar replica's freshness (at scrape time): the
    /// visibility delays since the last scrape and each region's lag.
    pub fn observe_columnar(
        &self,
        replica: &duet_columnar::Replica,
        regions: &[duet_raft::store::RegionStatus],
    ) {
        for delay in replica.take_visibility_delays() {
            self.columnar_visible_seconds.observe(delay.as_secs_f64());
        }
        self.columnar_stopped
            .set(i64::from(replica.stopped().is_some()));
        for r in regions {
            // A region the replica has applied nothing of since it was
            // rebuilt from the row store at start is as current as it.
            let lag = replica
                .applied(r.region_id)
                .map_or(0, |applied| r.applied_index.saturating_sub(applied));
            self.columnar_lag
                .with_label_values(&[r.region_id.to_string().as_str()])
                .set(lag as i64);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.connections_total.inc();
        m.observe_statement(Instant::now(), true);
        m.observe_region_cache(3);
        m.observe_region_cache(5);
        let text = m.render();
        assert!(text.contains("duet_region_cache_misses_total 5"), "{text}");
        assert!(text.contains("duet_connections_total 1"), "{text}");
        assert!(
            text.contains("duet_statements_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE duet_statement_duration_seconds histogram"),
            "{text}"
        );
    }
}
