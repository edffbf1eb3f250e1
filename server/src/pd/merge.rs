//! A node's part in merging two regions (the protocol is in
//! `docs/architecture/placement.md`, "Merging two regions"): as the
//! source's leader it proposes the prepare the placement driver asks for,
//! then, every round while its region is merging and every peer has the
//! prepare, asks the target's leader to commit; when the target has moved
//! on without absorbing the source, it rolls the merge back.

use duet_raft::Error as RaftError;
use duet_raft::cluster::ClusterStore;
use duet_raft::region::CommitMerge;
use duet_raft::store::{MergeStep, RaftStore, RegionStatus};
use duet_storage::engine::rocks::RocksEngine;
use tracing::{debug, info};

/// Proposes merging `source` (led here) into `target` (held here: the two
/// share their stores).
pub(super) fn prepare(store: &RaftStore<RocksEngine>, source: u64, target: u64) {
    let Some(target) = store.view().get(target) else {
        debug!(source, target, "merge target not held here");
        return;
    };
    match store.merge(source, MergeStep::Prepare(target)) {
        Ok(()) => info!(source, "merge prepared"),
        Err(e) => info!(source, error = %e, "merge not prepared"),
    }
}

/// Asks the target's leader to absorb `source`; rolls the merge back when
/// the target answers with a range that moved on without it (no commit
/// can apply any more then).
pub(super) fn finish(
    store: &RaftStore<RocksEngine>,
    txn_store: &ClusterStore<RocksEngine>,
    region: &RegionStatus,
    commit: &CommitMerge,
) {
    let source = region.region_id;
    let merging = region.merging.as_ref().and_then(|m| m.target.as_ref());
    let Some(target) = merging.map(|t| t.id) else {
        return;
    };
    match txn_store.commit_merge(target, commit) {
        Ok(()) => info!(source, target, "merge committed"),
        Err(RaftError::EpochNotMatch { current, .. }) => {
            let prepared = commit.source.as_ref();
            let absorbed = prepared.is_some_and(|s| covers(&current, s));
            if absorbed {
                return;
            }
            match store.merge(source, MergeStep::Rollback(current.epoch())) {
                Ok(()) => info!(source, target, "merge rolled back: the target moved on"),
                Err(e) => debug!(source, error = %e, "merge rollback not proposed"),
            }
        }
        Err(e) => debug!(source, target, error = %e, "merge not committed yet"),
    }
}

/// Whether `region`'s range holds all of `other`'s.
fn covers(region: &duet_raft::region::Region, other: &duet_raft::region::Region) -> bool {
    region.start_key <= other.start_key
        && (region.end_key.is_empty()
            || (!other.end_key.is_empty() && other.end_key <= region.end_key))
}
