//! The nemesis: a schedule of faults drawn from a seed (the same seed, the
//! same run), and how each is applied to a [`Cluster`] and healed.

use std::io;

use super::cluster::Cluster;

/// One fault, on hosts `1..=n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9`; healing starts it again.
    Kill(usize),
    /// `SIGSTOP`; healing sends `SIGCONT`.
    Pause(usize),
    /// The two sides cannot reach each other.
    Partition(Vec<usize>, Vec<usize>),
    /// `bridge` reaches both sides; the sides do not reach each other.
    Bridge {
        bridge: usize,
        left: Vec<usize>,
        right: Vec<usize>,
    },
    /// `to` hears nothing from `from`; `from` still hears `to`.
    OneWay { from: usize, to: usize },
    /// The host loses this share of its incoming packets (percent).
    Lossy(usize, u32),
    /// The host's disk is filled; healing frees it.
    DiskFull(usize),
    /// The host's links slow to a trickle with a deep queue: its packets
    /// wait (up to about a second), none is dropped for it.
    Slow(usize),
    /// The wall clock of a host jumps by this many seconds (either way);
    /// healing sets it right, a jump back of the same size. The harness
    /// moves it to the host that hands out timestamps, where it matters.
    ClockJump(usize, i64),
}

/// How many kinds of [`Fault`] there are.
pub const KINDS: usize = 9;

impl Fault {
    /// The fault's kind, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill",
            Fault::Pause(_) => "pause",
            Fault::Partition(..) => "partition",
            Fault::Bridge { .. } => "bridge",
            Fault::OneWay { .. } => "one-way",
            Fault::Lossy(..) => "lossy",
            Fault::DiskFull(_) => "disk-full",
            Fault::Slow(_) => "slow",
            Fault::ClockJump(..) => "clock-jump",
        }
    }
}

/// A fault, how long it lasts and how long the cluster is left alone after
/// it heals (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub fault: Fault,
    pub hold_ms: u64,
    pub quiet_ms: u64,
}

/// splitmix64: a small, good generator, so a schedule needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn shuffled(&mut self, hosts: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (1..=hosts).collect();
        for i in (1..all.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            all.swap(i, j);
        }
        all
    }
}

/// The short run's seed and rounds (CI): every kind of fault in them.
pub const SHORT_SEED: u64 = 105;
pub const SHORT_ROUNDS: usize = 10;

/// `rounds` faults over `hosts` hosts (at least 3), from `seed`.
pub fn schedule(seed: u64, hosts: usize, rounds: usize) -> Vec<Round> {
    let mut rng = Rng(seed);
    (0..rounds)
        .map(|_| {
            let order = rng.shuffled(hosts);
            let minority = (hosts - 1) / 2;
            let fault = match rng.below(KINDS as u64) {
                0 => Fault::Kill(order[0]),
                1 => Fault::Pause(order[0]),
                2 => Fault::Partition(order[..minority].to_vec(), order[minority..].to_vec()),
                3 => {
                    let half = (hosts - 1) / 2;
                    Fault::Bridge {
                        bridge: order[0],
                        left: order[1..=half].to_vec(),
                        right: order[half + 1..].to_vec(),
                    }
                }
                4 => Fault::OneWay {
                    from: order[0],
                    to: order[1],
                },
                5 => Fault::Lossy(order[0], 10 + rng.below(30) as u32),
                6 => Fault::DiskFull(order[0]),
                7 => Fault::Slow(order[0]),
                _ => {
                    // From a few seconds (past lock lifetimes) to longer
                    // than the GC life time (10 minutes), both ways.
                    let secs = 5 + rng.below(900) as i64;
                    let ahead = rng.below(2) == 0;
                    Fault::ClockJump(order[0], if ahead { secs } else { -secs })
                }
            };
            Round {
                fault,
                hold_ms: 2_000 + rng.below(6_000),
                quiet_ms: 2_000 + rng.below(3_000),
            }
        })
        .collect()
}

/// Applies `fault` to `cluster`.
pub fn apply(cluster: &mut Cluster, fault: &Fault) -> io::Result<()> {
    match fault {
        Fault::Kill(i) => cluster.kill(*i),
        Fault::Pause(i) => cluster.pause(*i),
        Fault::Partition(a, b) => cluster.net.partition(a, b)?,
        Fault::Bridge {
            bridge: _,
            left,
            right,
        } => cluster.net.partition(left, right)?,
        Fault::OneWay { from, to } => cluster.net.cut(*from, *to)?,
        Fault::Lossy(i, percent) => cluster.net.lossy(*i, *percent)?,
        Fault::DiskFull(i) => cluster.fill(*i)?,
        Fault::Slow(i) => cluster.net.slow(*i)?,
        Fault::ClockJump(i, secs) => {
            let host = cluster.timestamp_host().unwrap_or(*i);
            eprintln!("chaos: node {host}'s clock jumps {secs:+} s");
            cluster.jump_clock(host, *secs)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_schedule_and_every_kind_of_fault() {
        let a = schedule(7, 5, 200);
        assert_eq!(a, schedule(7, 5, 200));
        assert_ne!(a, schedule(8, 5, 200));
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|r| r.fault.kind()).collect();
        assert_eq!(kinds.len(), KINDS, "{kinds:?}");
        // The short run's seed: every kind within its rounds.
        let short: std::collections::BTreeSet<&str> = (schedule(SHORT_SEED, 3, SHORT_ROUNDS)
            .iter())
        .map(|r| r.fault.kind())
        .collect();
        assert_eq!(short.len(), KINDS, "{short:?}");
        for r in &a {
            match &r.fault {
                Fault::Partition(minority, majority) => {
                    assert_eq!((minority.len(), majority.len()), (2, 3));
                }
                Fault::Bridge {
                    bridge,
                    left,
                    right,
                } => {
                    assert!(!left.contains(bridge) && !right.contains(bridge));
                    assert_eq!(left.len() + right.len(), 4);
                }
                Fault::OneWay { from, to } => assert_ne!(from, to),
                Fault::ClockJump(_, secs) => assert!((5..905).contains(&secs.abs())),
                _ => {}
            }
        }
    }
}
