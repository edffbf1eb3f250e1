//! Region snapshots with data: the KV contents of a region's key range (its
//! `default`, `lock` and `write` column families) at an applied index, built
//! by the leader when a follower is too far behind the compacted log (or has
//! just been created for a new region), and installed by the follower in
//! place of its own copy of that range. Other regions' keys are untouched.

use duet_storage::engine::{
    Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot as _, WriteBatch,
};
use prost::Message as _;

use crate::error::{Error, Result};
use crate::region::Region;

/// The column families a snapshot carries (Raft's own state is not data).
const DATA_CFS: [Cf; 3] = [Cf::Default, Cf::Lock, Cf::Write];

#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotData {
    #[prost(message, repeated, tag = "1")]
    pairs: Vec<Pair>,
    /// The region descriptor at the snapshot's index.
    #[prost(bytes = "vec", tag = "2")]
    region: Vec<u8>,
    /// The replicated timestamp-oracle limit (written by `TsoLimit` entries),
    /// so a replica that catches up by snapshot can still lead the oracle.
    #[prost(bytes = "vec", optional, tag = "3")]
    tso_limit: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Pair {
    #[prost(uint32, tag = "1")]
    cf: u32,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    value: Vec<u8>,
}

/// A data column family (a snapshot carries no Raft state).
fn cf_from(code: u32) -> Result<Cf> {
    Cf::from_code(code)
        .filter(|cf| *cf != Cf::Raft)
        .ok_or_else(|| Error::Corruption {
            what: "snapshot",
            detail: format!("unknown column family {code}"),
        })
}

/// The iterator options for a region's data in one column family.
fn range_options(region: Option<&Region>) -> IterOptions {
    match region.map(Region::data_bounds) {
        None => IterOptions::default(),
        Some((start, Some(end))) => IterOptions::range(start, end),
        Some((start, None)) => IterOptions {
            lower: Some(start),
            ..IterOptions::default()
        },
    }
}

/// The applied index and every data key of the region, read from one engine
/// snapshot so that they agree.
pub fn build<E: Engine>(engine: &E, region_id: u64) -> Result<(u64, Vec<u8>)> {
    let snap = engine.snapshot();
    let index = match snap.get(Cf::Raft, &crate::keys::apply_state_key(region_id))? {
        Some(b) => u64::from_be_bytes(b.as_slice().try_into().map_err(|_| Error::Corruption {
            what: "apply state",
            detail: format!("{} bytes instead of 8", b.len()),
        })?),
        None => 0,
    };
    let region = snap
        .get(Cf::Raft, &crate::keys::region_state_key(region_id))?
        .unwrap_or_default();
    let descriptor = decode_region(&region)?;
    let mut pairs = Vec::new();
    for cf in DATA_CFS {
        let opts = range_options(descriptor.as_ref());
        let lower = opts.lower.clone().unwrap_or_default();
        let mut it = snap.iter(cf, opts)?;
        let mut ok = it.seek(&lower)?;
        while ok {
            pairs.push(Pair {
                cf: cf.code(),
                key: it.key().to_vec(),
                value: it.value().to_vec(),
            });
            ok = it.next()?;
        }
    }
    let tso_limit = snap.get(Cf::Raft, duet_storage::tso::LIMIT_KEY)?;
    Ok((
        index,
        SnapshotData {
            pairs,
            region,
            tso_limit,
        }
        .encode_to_vec(),
    ))
}

fn decode_region(bytes: &[u8]) -> Result<Option<Region>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    Region::decode(bytes)
        .map(Some)
        .map_err(|e| Error::Corruption {
            what: "snapshot region",
            detail: e.to_string(),
        })
}

/// What a snapshot carries, decoded.
#[derive(Debug)]
pub struct Contents {
    /// The region descriptor at the snapshot's index.
    pub region: Option<Region>,
    /// Every data key of the region's range, as puts.
    pub writes: Vec<Modify>,
    tso_limit: Option<Vec<u8>>,
}

/// Decodes a snapshot's data.
pub fn decode(data: &[u8]) -> Result<Contents> {
    let decoded = SnapshotData::decode(data).map_err(|e| Error::Corruption {
        what: "snapshot",
        detail: e.to_string(),
    })?;
    let region = decode_region(&decoded.region)?;
    let writes = decoded
        .pairs
        .into_iter()
        .map(|p| {
            Ok(Modify::Put {
                cf: cf_from(p.cf)?,
                key: p.key,
                value: p.value,
            })
        })
        .collect::<Result<Vec<Modify>>>()?;
    Ok(Contents {
        region,
        writes,
        tso_limit: decoded.tso_limit,
    })
}

/// Adds to `batch` the removal of every data key of `region` in `engine`
/// (a range delete where the range is bounded).
pub fn clear<E: Engine>(engine: &E, region: &Region, batch: &mut WriteBatch) -> Result<()> {
    let (start, end) = region.data_bounds();
    if let Some(end) = end {
        for cf in DATA_CFS {
            batch.delete_range(cf, start.clone(), end.clone());
        }
        return Ok(());
    }
    let snap = engine.snapshot();
    for cf in DATA_CFS {
        let mut it = snap.iter(cf, range_options(Some(region)))?;
        let mut ok = it.seek(&start)?;
        while ok {
            batch.delete(cf, it.key().to_vec());
            ok = it.next()?;
        }
    }
    Ok(())
}

/// Adds to `batch` the replacement of the region's data in `engine` by
/// the snapshot's `contents` (its writes move into `batch`, at the returned
/// range of `batch.modifies`), and the region descriptor it carries.
pub fn install<E: Engine>(
    engine: &E,
    contents: &mut Contents,
    batch: &mut WriteBatch,
) -> Result<std::ops::Range<usize>> {
    let snap = engine.snapshot();
    for cf in DATA_CFS {
        let opts = range_options(contents.region.as_ref());
        let lower = opts.lower.clone().unwrap_or_default();
        let mut it = snap.iter(cf, opts)?;
        let mut ok = it.seek(&lower)?;
        while ok {
            batch.delete(cf, it.key().to_vec());
            ok = it.next()?;
        }
    }
    let start = batch.modifies.len();
    batch.modifies.append(&mut contents.writes);
    let written = start..batch.modifies.len();
    if let Some(limit) = &contents.tso_limit {
        batch.put(
            Cf::Raft,
            duet_storage::tso::LIMIT_KEY.to_vec(),
            limit.clone(),
        );
    }
    if let Some(region) = &contents.region {
        region.save(batch);
    }
    Ok(written)
}
