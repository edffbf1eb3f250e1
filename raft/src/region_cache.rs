//! The client side's map of where regions are, for regions a node may hold
//! no replica of: key → region descriptor and the leader last seen, as
//! client-go's region cache keeps them. What a refused request says
//! updates it: `NotLeader` names the new leader (or, naming none, the next
//! peer is tried), `EpochNotMatch` carries the regions as they are now and
//! replaces what they overlap, `RegionNotFound` drops the entry. Each
//! refusal is also a [`Retry`] decision, with exponential backoff for the
//! refusals that more asking will not fix at once. No I/O and no clock:
//! the caller sleeps.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use crate::error::Error;
use crate::region::Region;

/// A region and the store believed to lead it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub region: Region,
    pub leader: Option<u64>,
}

/// Regions by start key; entries never overlap.
#[derive(Debug, Clone, Default)]
pub struct RegionCache {
    by_start: BTreeMap<Vec<u8>, Located>,
    /// Lookups that found nothing (a metric: region cache misses).
    pub misses: u64,
}

fn version(r: &Region) -> (u64, u64) {
    r.epoch.map_or((0, 0), |e| (e.version, e.conf_ver))
}

impl RegionCache {
    pub fn new() -> RegionCache {
        RegionCache::default()
    }

    /// The region holding `key`, if known.
    pub fn locate(&mut self, key: &[u8]) -> Option<Located> {
        let found = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(_, l)| l)
            .filter(|l| l.region.contains(key))
            .cloned();
        if found.is_none() {
            self.misses += 1;
        }
        found
    }

    /// Learns `region` led by `leader`. A descriptor older than one it
    /// overlaps is ignored; otherwise it replaces every entry it overlaps.
    pub fn insert(&mut self, region: Region, leader: Option<u64>) {
        let overlapping: Vec<Vec<u8>> = self
            .by_start
            .values()
            .filter(|l| l.region.overlaps(&region))
            .map(|l| l.region.start_key.clone())
            .collect();
        let newer_known = overlapping
            .iter()
            .any(|k| version(&self.by_start[k].region) > version(&region));
        if newer_known {
            return;
        }
        for k in overlapping {
            self.by_start.remove(&k);
        }
        self.by_start
            .insert(region.start_key.clone(), Located { region, leader });
    }

    /// Forgets region `id`.
    pub fn invalidate(&mut self, id: u64) {
        self.by_start.retain(|_, l| l.region.id != id);
    }

    fn entry(&mut self, id: u64) -> Option<&mut Located> {
        self.by_start.values_mut().find(|l| l.region.id == id)
    }

    /// The store to send region `id`'s requests to next: its leader if
    /// known, else the first voter not yet `tried`.
    pub fn target(&self, id: u64, tried: &[u64]) -> Option<u64> {
        let l = self.by_start.values().find(|l| l.region.id == id)?;
        l.leader.filter(|s| !tried.contains(s)).or_else(|| {
            l.region
                .peers
                .iter()
                .filter(|p| !p.learner && !tried.contains(&p.store_id))
                .map(|p| p.store_id)
                .next()
        })
    }

    /// Takes what a refusal of a request to region `region_id` says, and
    /// decides how to go on.
    pub fn on_error(&mut self, region_id: u64, error: &Error, backoff: &mut Backoff) -> Retry {
        match error {
            Error::NotLeader { leader, .. } => {
                let among_peers = self
                    .entry(region_id)
                    .map(|l| l.region.peers.iter().any(|p| Some(p.store_id) == *leader));
                match (among_peers, leader) {
                    // A leader among the region's peers: ask it at once.
                    (Some(true), Some(new)) => {
                        if let Some(l) = self.entry(region_id) {
                            l.leader = Some(*new);
                        }
                        Retry::Now
                    }
                    // No leader known (an election is running), or one the
                    // cached peers do not include (the cache is stale).
                    (Some(_), None) => {
                        if let Some(l) = self.entry(region_id) {
                            l.leader = None;
                        }
                        backoff.retry()
                    }
                    _ => {
                        self.invalidate(region_id);
                        backoff.retry()
                    }
                }
            }
            Error::EpochNotMatch { current, .. } => {
                self.invalidate(region_id);
                if current.id != 0 {
                    self.insert((**current).clone(), None);
                }
                Retry::Now
            }
            Error::RegionNotFound(_) => {
                self.invalidate(region_id);
                backoff.retry()
            }
            Error::ProposalDropped { .. } | Error::ServerIsBusy { .. } => backoff.retry(),
            Error::Storage(duet_storage::Error::Unavailable(_)) => backoff.retry(),
            _ => Retry::GiveUp,
        }
    }

    /// Every cached region, by start key.
    pub fn regions(&self) -> impl Iterator<Item = &Located> {
        self.by_start.values()
    }
}

/// What to do after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send again at once (the cache now knows better).
    Now,
    /// Send again after this pause.
    After(Duration),
    /// Stop: the error is the answer, or the attempts are spent.
    GiveUp,
}

/// Exponential backoff: `base`, doubling each time up to `cap`, for at most
/// `max_attempts` pauses.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    attempts: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, max_attempts: u32) -> Backoff {
        Backoff {
            base,
            cap,
            max_attempts,
            attempts: 0,
        }
    }

    /// The next pause, or `GiveUp` once the attempts are spent.
    pub fn retry(&mut self) -> Retry {
        if self.attempts >= self.max_attempts {
            return Retry::GiveUp;
        }
        let pause = self
            .base
            .saturating_mul(1 << self.attempts.min(16))
            .min(self.cap);
        self.attempts += 1;
        Retry::After(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::{PeerMeta, RegionEpoch};

    fn region(id: u64, start: &[u8], end: &[u8], version: u64, stores: &[u64]) -> Region {
        Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            epoch: Some(RegionEpoch {
                conf_ver: 1,
                version,
            }),
            peers: stores
                .iter()
                .map(|s| PeerMeta {
                    id: *s,
                    store_id: *s,
                    learner: false,
                    addr: String::new(),
                })
                .collect(),
        }
    }

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50), 4)
    }

    #[test]
    fn keys_find_their_region_and_a_miss_is_counted() {
        let mut cache = RegionCache::new();
        cache.insert(region(1, b"", b"m", 1, &[1, 2, 3]), Some(1));
        cache.insert(region(2, b"m", b"", 1, &[1, 2, 3]), Some(2));
        assert_eq!(cache.locate(b"a").map(|l| l.region.id), Some(1));
        assert_eq!(
            cache.locate(b"m").map(|l| (l.region.id, l.leader)),
            Some((2, Some(2)))
        );
        assert_eq!(cache.misses, 0);
        cache.invalidate(1);
        assert_eq!(cache.locate(b"a"), None);
        assert_eq!(cache.misses, 1);
    }

    #[test]
    fn a_newer_descriptor_replaces_what_it_overlaps_and_an_older_one_is_ignored() {
        let mut cache = RegionCache::new();
        cache.insert(region(1, b"", b"", 1, &[1]), Some(1));
        // The split's two halves.
        cache.insert(region(2, b"m", b"", 2, &[1]), None);
        assert_eq!(cache.locate(b"a"), None, "the parent's stale range is gone");
        cache.insert(region(1, b"", b"m", 2, &[1]), Some(1));
        assert_eq!(cache.regions().count(), 2);
        // A late report of the parent changes nothing.
        cache.insert(region(1, b"", b"", 1, &[1]), Some(1));
        assert_eq!(cache.locate(b"z").map(|l| l.region.id), Some(2));
    }

    #[test]
    fn not_leader_follows_the_named_leader_or_backs_off() {
        let mut cache = RegionCache::new();
        cache.insert(region(1, b"", b"", 1, &[1, 2, 3]), Some(1));
        let mut b = backoff();
        let to_two = Error::NotLeader {
            region_id: 1,
            leader: Some(2),
        };
        assert_eq!(cache.on_error(1, &to_two, &mut b), Retry::Now);
        assert_eq!(cache.target(1, &[]), Some(2));
        let unknown = Error::NotLeader {
            region_id: 1,
            leader: None,
        };
        assert_eq!(
            cache.on_error(1, &unknown, &mut b),
            Retry::After(Duration::from_millis(10))
        );
        // With no leader known, the voters are tried in turn.
        assert_eq!(cache.target(1, &[]), Some(1));
        assert_eq!(cache.target(1, &[1]), Some(2));
        assert_eq!(cache.target(1, &[1, 2, 3]), None);
        // A leader the cached peers do not include: the entry is stale.
        let stranger = Error::NotLeader {
            region_id: 1,
            leader: Some(9),
        };
        assert_eq!(
            cache.on_error(1, &stranger, &mut b),
            Retry::After(Duration::from_millis(20))
        );
        assert_eq!(cache.regions().count(), 0);
    }

    #[test]
    fn epoch_not_match_installs_the_current_region_and_retries_at_once() {
        let mut cache = RegionCache::new();
        cache.insert(region(1, b"", b"", 1, &[1]), Some(1));
        let refused = Error::EpochNotMatch {
            region_id: 1,
            current: Box::new(region(1, b"", b"m", 2, &[1])),
        };
        assert_eq!(cache.on_error(1, &refused, &mut backoff()), Retry::Now);
        assert_eq!(
            cache.locate(b"a").map(|l| l.region.end_key),
            Some(b"m".to_vec())
        );
        assert_eq!(cache.locate(b"x"), None, "the new region must be looked up");
    }

    #[test]
    fn region_not_found_and_busy_back_off_until_the_attempts_are_spent() {
        let mut cache = RegionCache::new();
        cache.insert(region(1, b"", b"", 1, &[1]), Some(1));
        let mut b = backoff();
        let gone = Error::RegionNotFound(1);
        assert_eq!(
            cache.on_error(1, &gone, &mut b),
            Retry::After(Duration::from_millis(10))
        );
        assert_eq!(cache.regions().count(), 0);
        let busy = Error::Storage(duet_storage::Error::Unavailable("busy".into()));
        let pauses: Vec<Retry> = (0..4).map(|_| cache.on_error(1, &busy, &mut b)).collect();
        assert_eq!(
            pauses,
            [
                Retry::After(Duration::from_millis(20)),
                Retry::After(Duration::from_millis(40)),
                Retry::After(Duration::from_millis(50)),
                Retry::GiveUp,
            ]
        );
        let bad = Error::Corruption {
            what: "x",
            detail: String::new(),
        };
        assert_eq!(cache.on_error(1, &bad, &mut backoff()), Retry::GiveUp);
    }
}
