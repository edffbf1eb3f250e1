//! The layout of Raft's own keys in the engine's `raft` column family. Every
//! key of a region starts with `0x01` and the region id, so one region's
//! state is one contiguous range; `0x00…` keys belong to the store (e.g. the
//! timestamp oracle); `0x02 region` marks a region whose replica this store
//! removed.

const REGION_PREFIX: u8 = 0x01;
const TOMBSTONE_PREFIX: u8 = 0x02;

/// `0x01 region`: the prefix of every key of one region.
pub fn region_prefix(region_id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.push(REGION_PREFIX);
    k.extend_from_slice(&region_id.to_be_bytes());
    k
}

/// The bounds `[start, end)` of every region's keys.
pub fn region_range() -> (Vec<u8>, Vec<u8>) {
    (vec![REGION_PREFIX], vec![REGION_PREFIX + 1])
}

/// The bounds `[start, end)` of one region's keys.
pub fn one_region_range(region_id: u64) -> (Vec<u8>, Vec<u8>) {
    match region_id.checked_add(1) {
        Some(next) => (region_prefix(region_id), region_prefix(next)),
        None => (region_prefix(region_id), region_range().1),
    }
}

/// `0x02 region`: this store removed its replica of the region; the value
/// is the region's membership version (`conf_ver`) that removed it.
pub fn tombstone_key(region_id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(TOMBSTONE_PREFIX);
    k.extend_from_slice(&region_id.to_be_bytes());
    k
}

/// The region a key of this layout belongs to.
pub fn region_of(key: &[u8]) -> Option<u64> {
    match key {
        [REGION_PREFIX, id @ ..] if id.len() >= 8 => {
            id[..8].try_into().ok().map(u64::from_be_bytes)
        }
        _ => None,
    }
}

fn region_key(region_id: u64, suffix: u8) -> Vec<u8> {
    let mut k = region_prefix(region_id);
    k.push(suffix);
    k
}

/// `0x01 region 'm'`: the merge a source region is in (see
/// the region module's `MergeState`).
pub fn merge_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b'm')
}

/// `0x01 region 'v' index`: the entry at `index` (a merge step) changed
/// the region's epoch version; the value is the version before it (what
/// a replay of the log needs: the peer module's `applied_writes`).
pub fn epoch_step_key(region_id: u64, index: u64) -> Vec<u8> {
    let mut k = region_key(region_id, b'v');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// `0x01 region 'l' index`: one log entry.
pub fn entry_key(region_id: u64, index: u64) -> Vec<u8> {
    let mut k = region_key(region_id, b'l');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// `0x01 region 'h'`: the Raft hard state (term, vote, commit).
pub fn hard_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b'h')
}

/// `0x01 region 'c'`: the membership (voters and learners).
pub fn conf_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b'c')
}

/// `0x01 region 'a'`: the applied index, written with each apply.
pub fn apply_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b'a')
}

/// `0x01 region 't'`: index and term of the last entry removed by log compaction.
pub fn truncated_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b't')
}

/// `0x01 region 'r'`: the region's metadata (range, epoch, peers).
pub fn region_state_key(region_id: u64) -> Vec<u8> {
    region_key(region_id, b'r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_index_within_a_region() {
        assert!(entry_key(1, 9) < entry_key(1, 10));
        assert!(entry_key(1, u64::MAX) < entry_key(2, 0));
        assert!(hard_state_key(1) > entry_key(1, u64::MAX) || hard_state_key(1) < entry_key(1, 0));
        assert_eq!(region_of(&region_state_key(42)), Some(42));
        assert_eq!(region_of(b"\x00tso"), None);
        let (start, end) = region_range();
        assert!(start <= entry_key(0, 0) && entry_key(u64::MAX, u64::MAX) < end);
        assert!(
            tombstone_key(0) >= end,
            "tombstones outlive a region's keys"
        );
        let (a, b) = one_region_range(7);
        assert!(a <= hard_state_key(7) && entry_key(7, u64::MAX) < b && b <= entry_key(8, 0));
        assert_eq!(one_region_range(u64::MAX).1, end);
    }
}
