//! What a run reports: the summary table on stdout, `result.json` with
//! every figure and the configuration, and SVG plots (throughput over time,
//! latency CDFs, freshness over time).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::{Value, json};

use super::check::Condition;
use super::driver::PhaseStats;
use super::load::LoadReport;
use super::tpcc::TxnKind;
use crate::error::{Error, Result};

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Report {
    pub config: Value,
    pub server_version: String,
    pub load: Option<LoadReport>,
    pub phases: Vec<PhaseStats>,
    pub consistency: Vec<Condition>,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v
}

impl Report {
    pub fn phase(&self, name: &str) -> Option<&PhaseStats> {
        self.phases.iter().find(|p| p.plan_name == name)
    }

    /// Whether every consistency condition held.
    pub fn consistent(&self) -> bool {
        self.consistency.iter().all(|c| c.passed)
    }

    /// OLTP alone vs with OLAP, and OLAP alone vs with OLTP (present when
    /// the run had all three phases).
    pub fn interference(&self) -> Option<Value> {
        let (oltp, olap, mixed) = (
            self.phase("oltp-alone")?,
            self.phase("olap-alone")?,
            self.phase("mixed")?,
        );
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Some(json!({
            "tpmc_alone": oltp.tpmc(),
            "tpmc_with_olap": mixed.tpmc(),
            "tpmc_ratio": ratio(mixed.tpmc(), oltp.tpmc()),
            "qph_alone": olap.qph(),
            "qph_with_oltp": mixed.qph(),
            "qph_ratio": ratio(mixed.qph(), olap.qph()),
        }))
    }

    pub fn to_json(&self) -> Value {
        let phases: Vec<Value> = self.phases.iter().map(phase_json).collect();
        json!({
            "benchmark": "CH-benCHmark",
            "config": self.config,
            "server_version": self.server_version,
            "load": self.load,
            "phases": phases,
            "interference": self.interference(),
            "consistency": {
                "passed": self.consistent(),
                "conditions": self.consistency,
            },
        })
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "CH-benCHmark on {}", self.server_version);
        if let Some(load) = &self.load {
            let _ = writeln!(
                out,
                "load: {} warehouses, {} rows in {:.1} s ({:.0} rows/s)",
                load.warehouses,
                load.rows,
                load.seconds,
                load.rows as f64 / load.seconds.max(1e-9)
            );
        }
        for phase in &self.phases {
            let _ = writeln!(
                out,
                "\n== phase {} ({:.0} s, {} OLTP workers, {} OLAP workers)",
                phase.plan_name, phase.seconds, phase.oltp_workers, phase.olap_workers
            );
            if phase.oltp_workers > 0 {
                let _ = writeln!(out, "tpmC {:.1}", phase.tpmc());
                let _ = writeln!(
                    out,
                    "{:<13} {:>9} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
                    "transaction",
                    "committed",
                    "rolledbk",
                    "retries",
                    "failed",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "max ms"
                );
                for kind in TxnKind::ALL {
                    if let Some(s) = phase.txns.get(&kind) {
                        let h = &s.latency;
                        let _ = writeln!(
                            out,
                            "{:<13} {:>9} {:>8} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                            kind.name(),
                            s.committed,
                            s.rolled_back,
                            s.retries,
                            s.failed,
                            ms(h.value_at_quantile(0.50)),
                            ms(h.value_at_quantile(0.95)),
                            ms(h.value_at_quantile(0.99)),
                            ms(h.max())
                        );
                    }
                }
            }
            if phase.olap_workers > 0 {
                let _ = writeln!(out, "analytical queries per hour {:.1}", phase.qph());
                let _ = writeln!(
                    out,
                    "{:<5} {:>5} {:>7} {:>10} {:>10} {:>10}",
                    "query", "runs", "failed", "mean s", "min s", "max s"
                );
                for (n, q) in phase.queries.iter().enumerate() {
                    let runs = sorted(q.runs.iter().copied());
                    let mean = runs.iter().sum::<f64>() / (runs.len().max(1) as f64);
                    let _ = writeln!(
                        out,
                        "Q{:<4} {:>5} {:>7} {:>10.3} {:>10.3} {:>10.3}",
                        n + 1,
                        runs.len(),
                        q.failed,
                        mean,
                        runs.first().copied().unwrap_or(0.0),
                        runs.last().copied().unwrap_or(0.0)
                    );
                }
            }
            if !phase.freshness.is_empty() {
                let delays = sorted(phase.freshness.iter().map(|f| f.1));
                let _ = writeln!(
                    out,
                    "freshness ({}): {} samples, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    phase.freshness_engine,
                    delays.len(),
                    percentile(&delays, 0.5),
                    percentile(&delays, 0.95),
                    percentile(&delays, 0.99),
                    delays.last().copied().unwrap_or(0.0)
                );
            }
            for (message, count) in &phase.errors {
                let _ = writeln!(out, "error ×{count}: {message}");
            }
        }
        if let Some(i) = self.interference() {
            let _ = writeln!(
                out,
                "\ninterference: tpmC alone {:.1}, with OLAP {:.1} (×{:.2}); QphH alone {:.1}, with OLTP {:.1} (×{:.2})",
                i["tpmc_alone"].as_f64().unwrap_or(0.0),
                i["tpmc_with_olap"].as_f64().unwrap_or(0.0),
                i["tpmc_ratio"].as_f64().unwrap_or(0.0),
                i["qph_alone"].as_f64().unwrap_or(0.0),
                i["qph_with_oltp"].as_f64().unwrap_or(0.0),
                i["qph_ratio"].as_f64().unwrap_or(0.0),
            );
        }
        if !self.consistency.is_empty() {
            let _ = writeln!(out, "\nconsistency:");
            for c in &self.consistency {
                let verdict = if c.passed { "ok" } else { "FAILED" };
                let _ = writeln!(
                    out,
                    "  {} {:<52} {verdict}: {}",
                    c.id, c.description, c.detail
                );
            }
        }
        out
    }

    /// Writes `result.json` and the plots into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| output(dir, e))?;
        let path = dir.join("result.json");
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(|e| output(&path, e))?;
        std::fs::write(&path, text).map_err(|e| output(&path, e))?;
        plot_throughput(&self.phases, &dir.join("throughput.svg"))?;
        plot_latency(&self.phases, &dir.join("latency_cdf.svg"))?;
        plot_freshness(&self.phases, &dir.join("freshness.svg"))?;
        Ok(())
    }
}

fn output(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn phase_json(phase: &PhaseStats) -> Value {
    let txns: serde_json::Map<String, Value> = phase
        .txns
        .iter()
        .map(|(kind, s)| {
            let h = &s.latency;
            (
                kind.name().to_string(),
                json!({
                    "committed": s.committed,
                    "rolled_back": s.rolled_back,
                    "retries": s.retries,
                    "failed": s.failed,
                    "latency_ms": {
                        "p50": ms(h.value_at_quantile(0.50)),
                        "p95": ms(h.value_at_quantile(0.95)),
                        "p99": ms(h.value_at_quantile(0.99)),
                        "max": ms(h.max()),
                        "mean": h.mean() / 1000.0,
                    },
                }),
            )
        })
        .collect();
    let queries: Vec<Value> = phase
        .queries
        .iter()
        .enumerate()
        .map(|(n, q)| {
            let runs = sorted(q.runs.iter().copied());
            json!({
                "query": n + 1,
                "runs": runs.len(),
                "failed": q.failed,
                "mean_s": runs.iter().sum::<f64>() / (runs.len().max(1) as f64),
                "min_s": runs.first(),
                "max_s": runs.last(),
            })
        })
        .collect();
    let delays = sorted(phase.freshness.iter().map(|f| f.1));
    json!({
        "name": phase.plan_name,
        "seconds": phase.seconds,
        "oltp_workers": phase.oltp_workers,
        "olap_workers": phase.olap_workers,
        "tpmc": phase.tpmc(),
        "transactions": txns,
        "qph": phase.qph(),
        "queries": queries,
        "freshness": {
            "engine": phase.freshness_engine,
            "samples": delays.len(),
            "p50_ms": percentile(&delays, 0.5),
            "p95_ms": percentile(&delays, 0.95),
            "p99_ms": percentile(&delays, 0.99),
            "max_ms": delays.last(),
            "series": phase.freshness,
        },
        "timeline": {
            "new_orders_per_second": phase.new_orders_per_second,
            "transactions_per_second": phase.txns_per_second,
            "queries_per_second": phase.queries_per_second,
        },
        "errors": phase.errors,
    })
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Picks one per-second series of a phase.
type Series = fn(&PhaseStats) -> &Vec<u64>;

/// New-Orders per minute (top) and analytical queries per minute (bottom),
/// second by second, one line per phase.
fn plot_throughput(phases: &[PhaseStats], path: &Path) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| output(path, e);
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((2, 1));
    let series: [(&str, Series); 2] = [
        ("New-Order per minute", |p| &p.new_orders_per_second),
        ("analytical queries per minute", |p| &p.queries_per_second),
    ];
    for (panel, (title, pick)) in panels.iter().zip(series) {
        let seconds = phases.iter().map(|p| p.seconds).fold(1.0, f64::max);
        let top = phases
            .iter()
            .flat_map(|p| pick(p).iter().map(|&n| n as f64 * 60.0))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..seconds, 0.0..top * 1.1)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .draw()
            .map_err(|e| fail(&e))?;
        for (n, phase) in phases.iter().enumerate() {
            let color = COLORS[n % COLORS.len()];
            let points = pick(phase)
                .iter()
                .enumerate()
                .map(|(s, &count)| (s as f64 + 0.5, count as f64 * 60.0));
            chart
                .draw_series(LineSeries::new(points, color))
                .map_err(|e| fail(&e))?
                .label(phase.plan_name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// The latency CDF of each transaction type, over all phases.
fn plot_latency(phases: &[PhaseStats], path: &Path) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| output(path, e);
    let mut merged: Vec<(TxnKind, hdrhistogram::Histogram<u64>)> = Vec::new();
    for kind in TxnKind::ALL {
        let mut h = super::driver::histogram();
        for phase in phases {
            if let Some(s) = phase.txns.get(&kind) {
                let _ = h.add(&s.latency);
            }
        }
        if !h.is_empty() {
            merged.push((kind, h));
        }
    }
    let top = merged.iter().map(|(_, h)| ms(h.max())).fold(1.0, f64::max);
    let fastest = merged
        .iter()
        .map(|(_, h)| ms(h.min()))
        .fold(f64::INFINITY, f64::min);
    let bottom = if fastest.is_finite() {
        (fastest / 2.0).max(0.001)
    } else {
        0.01
    };
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("transaction latency CDF", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d((bottom..top * 1.2).log_scale(), 0.0..1.0)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("fraction")
        .draw()
        .map_err(|e| fail(&e))?;
    for (n, (kind, h)) in merged.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let total = h.len() as f64;
        let mut seen = 0u64;
        let points: Vec<(f64, f64)> = h
            .iter_recorded()
            .map(|v| {
                seen += v.count_at_value();
                (ms(v.value_iterated_to()).max(bottom), seen as f64 / total)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, color))
            .map_err(|e| fail(&e))?
            .label(kind.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// Each freshness sample: when its New-Order committed and how long until
/// an analytical read saw it.
fn plot_freshness(phases: &[PhaseStats], path: &Path) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| output(path, e);
    let seconds = phases.iter().map(|p| p.seconds).fold(1.0, f64::max);
    let top = phases
        .iter()
        .flat_map(|p| p.freshness.iter().map(|f| f.1))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "freshness: commit of a New-Order to its visibility in an analytical read",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..top * 1.1)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds into the phase")
        .y_desc("delay (ms)")
        .draw()
        .map_err(|e| fail(&e))?;
    for (n, phase) in phases
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.freshness.is_empty())
    {
        let color = COLORS[n % COLORS.len()];
        chart
            .draw_series(LineSeries::new(phase.freshness.iter().copied(), color))
            .map_err(|e| fail(&e))?
            .label(phase.plan_name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
