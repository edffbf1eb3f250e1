//! Replicas that missed their own end. A store that was away while its
//! replica of a region was removed, or while the region merged into a
//! neighbour, keeps a peer nobody talks to: the members send it nothing,
//! and a learner never campaigns, so no tombstone notice reaches it. Such a
//! peer knows no leader; after a while its node asks another node for the
//! region holding the peer's start key, and [`judge`] decides from that
//! answer whether the replica is gone for good.
//!
//! Only evidence of a committed change counts: the same region at a later
//! membership version without this store, or another region holding the
//! start key at a later range version (a split keeps its left part's id,
//! so only a merge gives the start key to another region). A stale answer
//! (the asked node behind) shows older epochs and keeps the replica.

use crate::region::Region;

/// What to do with a replica, given what another node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing proves the replica gone (it may just lack a leader now).
    Keep,
    /// The region removed this store at membership version `conf_ver`.
    Removed { conf_ver: u64 },
    /// The region merged into another one; this store holds no replica of
    /// that one, so the data is nobody's here.
    MergedAway,
}

/// Judges `ours` (this store's replica, `store_id`) against `answer`, the
/// region another node holds at `ours`'s start key. `holds_answer`: this
/// store has a replica of `answer.id` — it then applies the merge itself
/// (catching the source up from its own log first), so the source must
/// stay until it does.
pub fn judge(ours: &Region, store_id: u64, answer: &Region, holds_answer: bool) -> Verdict {
    if !ours.is_initialized() || !answer.is_initialized() {
        return Verdict::Keep;
    }
    let (mine, theirs) = (ours.epoch(), answer.epoch());
    if answer.id == ours.id {
        let member = answer.peers.iter().any(|p| p.store_id == store_id);
        return if !member && theirs.conf_ver > mine.conf_ver {
            Verdict::Removed {
                conf_ver: theirs.conf_ver,
            }
        } else {
            Verdict::Keep
        };
    }
    if answer.contains(&ours.start_key) && theirs.version > mine.version && !holds_answer {
        Verdict::MergedAway
    } else {
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::RegionEpoch;

    fn region(
        id: u64,
        range: (&[u8], &[u8]),
        (conf_ver, version): (u64, u64),
        stores: &[u64],
    ) -> Region {
        let mut r = Region::bootstrap(id, stores, &[]);
        r.start_key = range.0.to_vec();
        r.end_key = range.1.to_vec();
        r.epoch = Some(RegionEpoch { conf_ver, version });
        r
    }

    #[test]
    fn a_later_membership_without_this_store_removes_it() {
        let ours = region(5, (b"b", b"d"), (3, 2), &[1, 2, 3]);
        let later = region(5, (b"b", b"d"), (5, 2), &[1, 2, 4]);
        assert_eq!(
            judge(&ours, 3, &later, true),
            Verdict::Removed { conf_ver: 5 }
        );
        // Still a member, or the asked node is behind: keep.
        assert_eq!(judge(&ours, 2, &later, true), Verdict::Keep);
        let behind = region(5, (b"b", b"d"), (2, 2), &[1, 2]);
        assert_eq!(judge(&ours, 3, &behind, true), Verdict::Keep);
        // The same membership version cannot exclude a member.
        let same = region(5, (b"b", b"d"), (3, 2), &[1, 2]);
        assert_eq!(judge(&ours, 3, &same, true), Verdict::Keep);
    }

    #[test]
    fn the_start_key_in_a_newer_neighbour_means_merged_away() {
        let ours = region(5, (b"b", b"d"), (3, 4), &[1, 2, 3]);
        let target = region(2, (b"a", b"d"), (3, 5), &[1, 2, 4]);
        assert_eq!(judge(&ours, 3, &target, false), Verdict::MergedAway);
        // This store holds the target: its own merge will take the source.
        assert_eq!(judge(&ours, 3, &target, true), Verdict::Keep);
        // A node that has not applied the split that made `ours` still
        // shows the parent at an older version: keep.
        let parent = region(2, (b"a", b""), (3, 3), &[1, 2, 3]);
        assert_eq!(judge(&ours, 3, &parent, false), Verdict::Keep);
        // A region that does not hold the start key proves nothing.
        let right = region(7, (b"c", b""), (3, 9), &[1, 2, 3]);
        assert_eq!(judge(&ours, 3, &right, false), Verdict::Keep);
    }

    #[test]
    fn an_empty_descriptor_proves_nothing() {
        let ours = region(5, (b"b", b"d"), (3, 4), &[1, 2, 3]);
        let mut empty = region(5, (b"b", b"d"), (9, 9), &[1]);
        empty.epoch = None;
        empty.peers.clear();
        assert_eq!(judge(&ours, 3, &empty, false), Verdict::Keep);
    }
}
