//! A region's descriptor: its key range `[start, end)` (empty `end` = no
//! bound), its epoch, and its peers. `conf_ver` grows with every membership
//! change and `version` with every change of range (split, merge), so a
//! request stamped with an older epoch can be told it is out of date
//! (`EpochNotMatch`) and re-routed. Stored in the `raft` CF and changed only
//! by applying log entries, so every replica has the same one.

use duet_storage::engine::{Cf, Engine, WriteBatch};
use prost::Message as _;

use crate::error::{Error, Result};
use crate::keys;

/// The epoch of a region.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RegionEpoch {
    #[prost(uint64, tag = "1")]
    pub conf_ver: u64,
    #[prost(uint64, tag = "2")]
    pub version: u64,
}

/// One replica of a region.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PeerMeta {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub store_id: u64,
    #[prost(bool, tag = "3")]
    pub learner: bool,
    /// The store's Raft address, when it joined after the founding (the
    /// founders' addresses come from `--initial-cluster`).
    #[prost(string, tag = "4")]
    pub addr: String,
}

/// Raft addresses of the stores a membership change adds: carried in the
/// change's context, so every replica's descriptor (and so every store's
/// address book) learns them at the same log position.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PeerAddresses {
    #[prost(message, repeated, tag = "1")]
    pub peers: Vec<PeerAddress>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PeerAddress {
    #[prost(uint64, tag = "1")]
    pub store_id: u64,
    #[prost(string, tag = "2")]
    pub addr: String,
}

/// A split, proposed to a region's leader as an admin entry (see
/// [`SPLIT_CONTEXT`]): the region keeps `[start, split_key)` and a new
/// region `new_region_id` takes `[split_key, end)`. The new id comes from the
/// cluster's timestamp oracle, so no two splits pick the same one.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SplitRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub split_key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub new_region_id: u64,
}

/// The context that marks a normal log entry as a [`SplitRequest`].
pub const SPLIT_CONTEXT: &[u8] = b"duet:split";

/// The first step of merging this region (the source) into a neighbour
/// (the target), proposed in the source's log (see [`MERGE_PREPARE_CONTEXT`]):
/// applied only if the source is still at `source_epoch`, it freezes the
/// source until the target absorbs it or the merge is rolled back. The
/// target's descriptor is as the source's leader knew it: its epoch is the
/// one a [`CommitMerge`] must still find.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PrepareMerge {
    #[prost(message, optional, tag = "1")]
    pub target: Option<Region>,
    #[prost(message, optional, tag = "2")]
    pub source_epoch: Option<RegionEpoch>,
}

/// The second step, proposed in the target's log (see
/// [`MERGE_COMMIT_CONTEXT`]): the target widens over `source` (its
/// descriptor once prepared, at log index `prepare_index`) if the target is
/// still at `target_epoch` and on the source's stores.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CommitMerge {
    #[prost(message, optional, tag = "1")]
    pub source: Option<Region>,
    #[prost(uint64, tag = "2")]
    pub prepare_index: u64,
    #[prost(message, optional, tag = "3")]
    pub target_epoch: Option<RegionEpoch>,
}

/// Undoes a prepared merge that can no longer commit (the target's epoch
/// moved), in the source's log (see [`MERGE_ROLLBACK_CONTEXT`]): applied
/// only if the source is still merging as prepared at `prepare_index`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RollbackMerge {
    #[prost(uint64, tag = "1")]
    pub prepare_index: u64,
    /// The source's epoch version while it was merging.
    #[prost(uint64, tag = "2")]
    pub version: u64,
}

/// A source region's merge in progress, kept beside its descriptor: the
/// target as the prepare named it and the index of the prepare entry.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MergeState {
    #[prost(message, optional, tag = "1")]
    pub target: Option<Region>,
    #[prost(uint64, tag = "2")]
    pub prepare_index: u64,
}

/// The contexts that mark normal log entries as the steps of a merge.
pub const MERGE_PREPARE_CONTEXT: &[u8] = b"duet:merge-prepare";
pub const MERGE_COMMIT_CONTEXT: &[u8] = b"duet:merge-commit";
pub const MERGE_ROLLBACK_CONTEXT: &[u8] = b"duet:merge-rollback";

/// Which region messages are for, and the membership version (`conf_ver`)
/// of the region at their sender: a store that removed its replica of a
/// region refuses messages from members it outlived (see
/// `Regions::step`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegionTag {
    pub region_id: u64,
    pub conf_ver: u64,
}

/// A region: range, epoch, peers.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Region {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub start_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub end_key: Vec<u8>,
    #[prost(message, optional, tag = "4")]
    pub epoch: Option<RegionEpoch>,
    #[prost(message, repeated, tag = "5")]
    pub peers: Vec<PeerMeta>,
}

impl Region {
    /// The first descriptor of a region covering every key (peer id = store id).
    pub fn bootstrap(id: u64, voters: &[u64], learners: &[u64]) -> Region {
        let mut region = Region {
            id,
            start_key: Vec::new(),
            end_key: Vec::new(),
            epoch: Some(RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: Vec::new(),
        };
        region.set_peers(voters, learners, &[]);
        region
    }

    pub fn epoch(&self) -> RegionEpoch {
        self.epoch.unwrap_or(RegionEpoch {
            conf_ver: 0,
            version: 0,
        })
    }

    /// Whether `key` lies in the region's range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start_key.as_slice()
            && (self.end_key.is_empty() || key < self.end_key.as_slice())
    }

    /// The Raft address recorded for `store_id`, if any.
    pub fn address_of(&self, store_id: u64) -> Option<&str> {
        self.peers
            .iter()
            .find(|p| p.store_id == store_id && !p.addr.is_empty())
            .map(|p| p.addr.as_str())
    }

    /// Sets the peers; known addresses are kept, `addrs` adds new ones.
    fn set_peers(&mut self, voters: &[u64], learners: &[u64], addrs: &[PeerAddress]) {
        let addr = |id: u64| {
            addrs
                .iter()
                .find(|a| a.store_id == id)
                .map(|a| a.addr.clone())
                .or_else(|| self.address_of(id).map(str::to_string))
                .unwrap_or_default()
        };
        let meta = |id: &u64, learner: bool| PeerMeta {
            id: *id,
            store_id: *id,
            learner,
            addr: addr(*id),
        };
        let mut peers: Vec<PeerMeta> = voters
            .iter()
            .map(|id| meta(id, false))
            .chain(learners.iter().map(|id| meta(id, true)))
            .collect();
        peers.sort_by_key(|p| p.id);
        self.peers = peers;
    }

    /// The descriptor after a membership change: new peers (with the
    /// addresses of those that joined), `conf_ver` + 1.
    pub fn with_membership(
        &self,
        voters: &[u64],
        learners: &[u64],
        addrs: &[PeerAddress],
    ) -> Region {
        let mut next = self.clone();
        next.set_peers(voters, learners, addrs);
        let epoch = self.epoch();
        next.epoch = Some(RegionEpoch {
            conf_ver: epoch.conf_ver + 1,
            version: epoch.version,
        });
        next
    }

    /// The stores of the region's voters and of its learners, each sorted.
    pub fn stores(&self) -> (Vec<u64>, Vec<u64>) {
        let pick = |learner: bool| {
            let mut ids: Vec<u64> = (self.peers.iter())
                .filter(|p| p.learner == learner)
                .map(|p| p.store_id)
                .collect();
            ids.sort_unstable();
            ids
        };
        (pick(false), pick(true))
    }

    /// This region widened over `source`, its neighbour on either side, as
    /// a merge leaves it: the version past both, the membership its own.
    /// `None` if the two are not adjacent or not on the same stores.
    pub fn merged(&self, source: &Region) -> Option<Region> {
        if self.stores() != source.stores() || self.id == source.id {
            return None;
        }
        let mut next = self.clone();
        if !source.end_key.is_empty() && source.end_key == self.start_key {
            next.start_key = source.start_key.clone();
        } else if !self.end_key.is_empty() && self.end_key == source.start_key {
            next.end_key = source.end_key.clone();
        } else {
            return None;
        }
        let epoch = self.epoch();
        next.epoch = Some(RegionEpoch {
            conf_ver: epoch.conf_ver,
            version: epoch.version.max(source.epoch().version) + 1,
        });
        Some(next)
    }

    /// Whether the two ranges share a key.
    pub fn overlaps(&self, other: &Region) -> bool {
        let below = |key: &[u8], end: &[u8]| end.is_empty() || key < end;
        below(&self.start_key, &other.end_key) && below(&other.start_key, &self.end_key)
    }

    /// Whether this descriptor came from a bootstrap, a split or a snapshot
    /// (a peer created by a message from a new region's leader knows
    /// nothing of its region until the first snapshot arrives).
    pub fn is_initialized(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The descriptor of a peer that knows only its region's id.
    pub fn uninitialized(id: u64) -> Region {
        Region {
            id,
            start_key: Vec::new(),
            end_key: Vec::new(),
            epoch: None,
            peers: Vec::new(),
        }
    }

    /// Splits at `key` into this region's left part (same id) and a new
    /// region `new_id` from `key` on, with the same peers; both bump
    /// `version`. `None` if `key` is not strictly inside the range.
    pub fn split(&self, key: &[u8], new_id: u64) -> Option<(Region, Region)> {
        if key <= self.start_key.as_slice() || !self.contains(key) || new_id == self.id {
            return None;
        }
        let epoch = self.epoch();
        let epoch = Some(RegionEpoch {
            conf_ver: epoch.conf_ver,
            version: epoch.version + 1,
        });
        let left = Region {
            end_key: key.to_vec(),
            epoch,
            ..self.clone()
        };
        let right = Region {
            id: new_id,
            start_key: key.to_vec(),
            epoch,
            ..self.clone()
        };
        Some((left, right))
    }

    /// The bounds of the region's data in the engine's MVCC column
    /// families: user keys are stored memcomparable-encoded, so the encoded
    /// bounds enclose every version of every key in the range. `None` = no
    /// upper bound.
    pub fn data_bounds(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let start = duet_storage::mvcc::encode_key(&self.start_key);
        let end = (!self.end_key.is_empty()).then(|| duet_storage::mvcc::encode_key(&self.end_key));
        (start, end)
    }

    /// Loads the descriptor of `region_id` from `engine`, if any.
    pub fn load<E: Engine>(engine: &E, region_id: u64) -> Result<Option<Region>> {
        Region::read(&engine.snapshot(), region_id)
    }

    /// The descriptor of `region_id` in `snap`, if any.
    pub fn read<S: duet_storage::engine::Snapshot>(
        snap: &S,
        region_id: u64,
    ) -> Result<Option<Region>> {
        snap.get(Cf::Raft, &keys::region_state_key(region_id))?
            .map(|b| {
                Region::decode(b.as_slice()).map_err(|e| Error::Corruption {
                    what: "region state",
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    /// Adds the write of this descriptor to `batch`.
    pub fn save(&self, batch: &mut WriteBatch) {
        batch.put(
            Cf::Raft,
            keys::region_state_key(self.id),
            self.encode_to_vec(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_changes_bump_conf_ver_and_ranges_are_half_open() {
        let r = Region::bootstrap(1, &[3, 1, 2], &[4]);
        assert_eq!(
            r.epoch(),
            RegionEpoch {
                conf_ver: 1,
                version: 1
            }
        );
        assert_eq!(
            r.peers
                .iter()
                .map(|p| (p.id, p.learner))
                .collect::<Vec<_>>(),
            vec![(1, false), (2, false), (3, false), (4, true)]
        );
        let joined = PeerAddress {
            store_id: 4,
            addr: "127.0.0.1:20164".into(),
        };
        let next = r.with_membership(&[1, 2, 4], &[], std::slice::from_ref(&joined));
        assert_eq!(next.address_of(4), Some("127.0.0.1:20164"));
        assert_eq!(
            next.with_membership(&[1, 2], &[4], &[]).address_of(4),
            Some("127.0.0.1:20164"),
            "an address is kept across later changes"
        );
        assert_eq!(
            next.epoch(),
            RegionEpoch {
                conf_ver: 2,
                version: 1
            }
        );
        assert!(r.contains(b"") && r.contains(b"anything"));
        let bounded = Region {
            start_key: b"b".to_vec(),
            end_key: b"d".to_vec(),
            ..r
        };
        assert!(
            bounded.contains(b"b")
                && bounded.contains(b"c")
                && !bounded.contains(b"d")
                && !bounded.contains(b"a")
        );
    }

    #[test]
    fn a_merge_joins_neighbours_on_the_same_stores() {
        let r = Region::bootstrap(1, &[1, 2, 3], &[4]);
        let (left, right) = r.split(b"m", 9).unwrap();
        let (middle, far) = right.split(b"t", 12).unwrap();
        // Either side: the result spans both, past both versions.
        let grown = left.merged(&middle).expect("left meets middle");
        assert_eq!((grown.id, grown.start_key.as_slice()), (1, &b""[..]));
        assert_eq!(grown.end_key, b"t");
        assert_eq!(grown.epoch().version, middle.epoch().version + 1);
        assert_eq!(grown.epoch().conf_ver, left.epoch().conf_ver);
        let from_right = far.merged(&middle).expect("far meets middle");
        assert_eq!(
            (
                from_right.start_key.as_slice(),
                from_right.end_key.as_slice()
            ),
            (&b"m"[..], &b""[..])
        );
        // Not neighbours, itself, or other stores: no merge.
        assert!(left.merged(&far).is_none());
        assert!(left.merged(&left).is_none());
        let moved = middle.with_membership(&[1, 2, 5], &[4], &[]);
        assert!(left.merged(&moved).is_none());
        let (voters, learners) = moved.stores();
        assert_eq!((voters, learners), (vec![1, 2, 5], vec![4]));
    }

    #[test]
    fn a_split_divides_the_range_and_bumps_the_version() {
        let r = Region::bootstrap(1, &[1, 2, 3], &[]);
        let (left, right) = r.split(b"m", 9).expect("m is inside");
        assert_eq!((left.id, right.id), (1, 9));
        assert_eq!(
            (left.start_key.as_slice(), left.end_key.as_slice()),
            (&b""[..], &b"m"[..])
        );
        assert_eq!(
            (right.start_key.as_slice(), right.end_key.as_slice()),
            (&b"m"[..], &b""[..])
        );
        assert_eq!(left.epoch().version, 2);
        assert_eq!(right.epoch(), left.epoch());
        assert_eq!(right.peers, r.peers);
        assert!(left.split(b"m", 10).is_none(), "m is the left part's end");
        assert!(left.split(b"", 10).is_none(), "the start cannot split");
        assert!(right.split(b"m", 10).is_none() && right.split(b"n", 9).is_none());
        assert!(!Region::uninitialized(4).is_initialized() && r.is_initialized());
    }
}
