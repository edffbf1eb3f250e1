//! Reading a region's applied writes back from its Raft log: the MVCC
//! effects each entry carries (for a columnar replica's replay), and the
//! tag that marks an entry as carrying them.

use crate::error::{Error, Result};
use crate::keys;
use crate::region::Region;
use duet_storage::engine::{Cf, Modify};
use duet_storage::txn::commands::Effects;
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType};

/// A committed entry as a replayer reads it back from the log (see
/// [`logged_writes`]).
#[derive(Debug)]
pub enum Logged {
    /// A command's effects, computed under region epoch `version`: they
    /// applied if the region was at that version when the entry applied
    /// (a split in between refused them), and then only if `ok`.
    Effects {
        version: u64,
        ok: bool,
        writes: Vec<Modify>,
    },
    /// A split that would create region `new_region_id`; it applied (and
    /// raised the epoch version by one) if that region exists.
    Split { new_region_id: u64 },
    /// A step of a merge: if it applied, it recorded the epoch version
    /// before it (see [`crate::keys::epoch_step_key`]).
    EpochStep,
    /// No row data: an empty entry or a membership change.
    Nothing,
    /// A command logged before effects were: the log alone cannot replay it.
    Opaque,
}

/// Reads back entries `after + 1 ..= upto` of `region_id` from the raft log
/// in `snap`. `None` if any of them is no longer in the log.
pub fn logged_writes<S: duet_storage::engine::Snapshot>(
    snap: &S,
    region_id: u64,
    after: u64,
    upto: u64,
) -> Result<Option<Vec<Logged>>> {
    let mut out = Vec::new();
    for index in after + 1..=upto {
        let Some(bytes) = snap.get(Cf::Raft, &keys::entry_key(region_id, index))? else {
            return Ok(None);
        };
        let entry = Entry::parse_from_bytes(&bytes).map_err(|e| Error::Corruption {
            what: "log entry",
            detail: e.to_string(),
        })?;
        let context = entry.get_context();
        out.push(match entry.get_entry_type() {
            EntryType::EntryNormal if context == crate::region::SPLIT_CONTEXT => {
                let request: crate::region::SplitRequest =
                    prost::Message::decode(entry.data.as_ref()).map_err(|e| Error::Corruption {
                        what: "split request",
                        detail: e.to_string(),
                    })?;
                Logged::Split {
                    new_region_id: request.new_region_id,
                }
            }
            EntryType::EntryNormal
                if [
                    crate::region::MERGE_PREPARE_CONTEXT,
                    crate::region::MERGE_COMMIT_CONTEXT,
                    crate::region::MERGE_ROLLBACK_CONTEXT,
                ]
                .contains(&context) =>
            {
                Logged::EpochStep
            }
            EntryType::EntryNormal if entry.data.is_empty() => Logged::Nothing,
            EntryType::EntryNormal if context.starts_with(EFFECTS_CONTEXT) => {
                let version = effects_version(context)?;
                let (writes, response) = Effects::from_bytes(&entry.data)?.into_parts()?;
                Logged::Effects {
                    version,
                    ok: response.is_ok(),
                    writes: writes.modifies,
                }
            }
            EntryType::EntryNormal => Logged::Opaque,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => Logged::Nothing,
        });
    }
    Ok(Some(out))
}

/// What a replayer can learn from the log alone: the writes each entry
/// applied, in order, with its index.
#[derive(Debug)]
pub enum Replay {
    Writes(Vec<(u64, Vec<Modify>)>),
    /// Some entry is no longer in the log.
    Compacted,
    /// An entry logged before effects were.
    Opaque,
}

/// The writes that entries `after + 1 ..= upto` of `region_id` applied, as
/// its apply decided: effects count if the region's epoch version when they
/// applied was the one they were computed under. That version is the
/// region's now (in `snap`) less one per split applied after the entry (a
/// split applied if the region it creates exists), and as each merge step
/// applied after it recorded.
pub fn applied_writes<S: duet_storage::engine::Snapshot>(
    snap: &S,
    region_id: u64,
    after: u64,
    upto: u64,
) -> Result<Replay> {
    let Some(region) = Region::read(snap, region_id)? else {
        return Ok(Replay::Compacted);
    };
    let Some(logged) = logged_writes(snap, region_id, after, upto)? else {
        return Ok(Replay::Compacted);
    };
    let mut version = region.epoch().version;
    let mut out = Vec::new();
    let indexed: Vec<(u64, Logged)> = (after + 1..=upto).zip(logged).collect();
    for (index, entry) in indexed.into_iter().rev() {
        match entry {
            Logged::Effects {
                version: v,
                ok: true,
                writes,
            } if v == version => out.push((index, writes)),
            Logged::Effects { .. } | Logged::Nothing => {}
            Logged::Split { new_region_id } => {
                if Region::read(snap, new_region_id)?.is_some() {
                    version = version.saturating_sub(1);
                }
            }
            Logged::EpochStep => {
                let step = snap.get(Cf::Raft, &keys::epoch_step_key(region_id, index))?;
                if let Some(before) = step.and_then(|b| b.as_slice().try_into().ok()) {
                    version = u64::from_be_bytes(before);
                }
            }
            Logged::Opaque => return Ok(Replay::Opaque),
        }
    }
    out.reverse();
    Ok(Replay::Writes(out))
}

/// An entry that carries [`Effects`] has this context, followed by the
/// region epoch version they were computed under (8 bytes, big-endian).
pub(super) const EFFECTS_CONTEXT: &[u8] = b"duet:fx";

/// The context of an entry of effects computed under epoch `version`.
pub(super) fn effects_context(version: u64) -> Vec<u8> {
    let mut context = EFFECTS_CONTEXT.to_vec();
    context.extend_from_slice(&version.to_be_bytes());
    context
}

/// The epoch version in an [`effects_context`].
pub(super) fn effects_version(context: &[u8]) -> Result<u64> {
    context
        .get(EFFECTS_CONTEXT.len()..)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Corruption {
            what: "effects epoch",
            detail: format!("{} bytes", context.len()),
        })
}
