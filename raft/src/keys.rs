//! The layout of Raft's own keys in the engine's `raft` column family. Every
//! key of a region starts with `0x01` and the region id, so one region's
//! state is one contiguous range; `0x00…` keys belong to the store (e.g. the
//! timestamp oracle).

const REGION_PREFIX: u8 = 0x01;

fn region_key(region_id: u64, suffix: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.push(REGION_PREFIX);
    k.extend_from_slice(&region_id.to_be_bytes());
    k.push(suffix);
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
    }
}
