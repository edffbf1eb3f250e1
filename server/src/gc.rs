//! Where old versions may go: the GC safe point. It lies `gc_life_time`
//! behind the oracle's clock, and below the start of every transaction
//! still running anywhere in the cluster. Each node publishes the start of
//! its oldest running transaction under a replicated key
//! ([`publish_loop`]); the node leading the first region reads every
//! node's floor, proposes a replicated `Gc` command for the whole key space,
//! then destroys the key ranges of tables and indexes dropped before the
//! safe point ([`gc_loop`]); and every node compacts its columnar replica
//! behind the same kind of bound ([`compaction_loop`]).

use std::sync::Arc;
use std::time::Duration;

use duet_raft::cluster::ClusterStore;
use duet_raft::store::{FIRST_REGION, RaftStore};
use duet_storage::engine::rocks::RocksEngine;
use duet_storage::mvcc::{compose_ts, physical_ms};
use duet_storage::tso::TimestampSource;
use duet_storage::txn::commands::{DestroyRange, Gc};
use duet_storage::txn::{TxnClient, TxnStore};
use tracing::{debug, warn};

pub(crate) type Client = TxnClient<ClusterStore<RocksEngine>>;

/// Node `n`'s floor lives at this prefix + `n` (8 bytes, big-endian), in the
/// meta key space the SQL catalog reserves for the node (`m\x06`). The value
/// is the floor (`u64::MAX` when nothing runs) and the physical time, in
/// ms, of its publication: 16 bytes.
const FLOOR_PREFIX: &[u8] = b"m\x06";

fn floor_key(node_id: u64) -> Vec<u8> {
    let mut key = FLOOR_PREFIX.to_vec();
    key.extend_from_slice(&node_id.to_be_bytes());
    key
}

fn encode_floor(floor: Option<u64>, published_ms: u64) -> Vec<u8> {
    let mut value = floor.unwrap_or(u64::MAX).to_be_bytes().to_vec();
    value.extend_from_slice(&published_ms.to_be_bytes());
    value
}

/// `(floor, published_ms)`; `None` for a value of another shape.
fn decode_floor(value: &[u8]) -> Option<(Option<u64>, u64)> {
    let floor = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let published = u64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some(((floor != u64::MAX).then_some(floor), published))
}

/// The safe point at `now`: `life_ms` behind it, below `own` (this node's
/// oldest running transaction) and below every floor in `floors` that is
/// live. A floor published more than `life_ms` before the newest one
/// belongs to a node that stopped publishing: it is down, and its
/// transactions' locks expire and get resolved. Liveness is judged against
/// the newest publication, not against `now`, so that a step of the clock
/// behind the timestamps does not make every live node's floor look stale
/// at once. A node with nothing running starts what it runs next above its
/// publication, which bounds the safe point as a floor would.
fn safe_point(now: u64, life_ms: u64, floors: &[(Option<u64>, u64)], own: Option<u64>) -> u64 {
    let by_age = compose_ts(physical_ms(now).saturating_sub(life_ms), 0);
    let newest = floors.iter().map(|(_, published)| *published).max();
    let live_since = newest.unwrap_or(0).saturating_sub(life_ms);
    floors
        .iter()
        .filter(|(_, published)| *published >= live_since)
        .map(|(floor, published)| floor.unwrap_or(compose_ts(*published, 0)))
        .chain(own)
        .map(|floor| floor.saturating_sub(1))
        .fold(by_age, u64::min)
}

/// Every `every`, writes this node's floor (the start of its oldest running
/// transaction) through Raft, where the GC leader reads it.
pub async fn publish_loop(node_id: u64, client: Client, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let client = client.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            // Begun first: a transaction missing from the registry read
            // after it takes its timestamp later, above this one's start,
            // which the floor (this transaction among the running) bounds.
            let mut txn = client.begin()?;
            let oldest = client.oldest_running();
            txn.put(
                floor_key(node_id),
                encode_floor(oldest, physical_ms(txn.start_ts())),
            );
            txn.commit()
        })
        .await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "publishing the transaction floor failed"),
            Err(e) => warn!(error = %e, "publishing the transaction floor panicked"),
        }
    }
}

/// Every `every`, if this node leads the first region, collects the
/// versions below the safe point through Raft, in every region.
pub async fn gc_loop(
    store: Arc<RaftStore<RocksEngine>>,
    txn_store: Arc<ClusterStore<RocksEngine>>,
    client: Client,
    every: Duration,
    life_ms: u64,
    destroyed: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        let (store, txn_store, client, destroyed) = (
            Arc::clone(&store),
            Arc::clone(&txn_store),
            client.clone(),
            Arc::clone(&destroyed),
        );
        let outcome = tokio::task::spawn_blocking(move || {
            let leads_first = store
                .status()
                .iter()
                .any(|r| r.region_id == FIRST_REGION && r.is_leader);
            if !leads_first {
                return Ok(None);
            }
            let safe_point = cluster_safe_point(&client, life_ms)?;
            // Locks left below the safe point by crashed or slow clients would
            // block GC: settle them through their primary first.
            client.resolve_locks_below(safe_point)?;
            let gc = Gc {
                safe_point,
                start: Vec::new(),
                end: Vec::new(),
            };
            txn_store.execute(gc.into())?;
            let n = destroy_dropped(&client, &txn_store, safe_point)?;
            destroyed.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, duet_storage::Error>(Some(safe_point))
        })
        .await;
        match outcome {
            Ok(Ok(Some(safe_point))) => debug!(safe_point, "mvcc gc done"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(error = %e, "mvcc gc failed"),
            Err(e) => warn!(error = %e, "mvcc gc task failed"),
        }
    }
}

/// Destroys the ranges of the tables and indexes whose drop committed at
/// or below `safe_point` (the catalog's records of them are visible there,
/// so no snapshot that may still read can see their data), then forgets
/// each record. Returns how many ranges went.
fn destroy_dropped(
    client: &Client,
    txn_store: &ClusterStore<RocksEngine>,
    safe_point: u64,
) -> duet_storage::Result<usize> {
    let end = duet_storage::codec::key::prefix_end(duet_sql::DROPPED_PREFIX);
    let records = client.scan_at(duet_sql::DROPPED_PREFIX, &end, safe_point, 256)?;
    for (key, value) in &records {
        if let Some((start, end)) = duet_sql::dropped_range(key, value) {
            txn_store.execute(DestroyRange { start, end }.into())?;
        }
        let mut txn = client.begin()?;
        txn.delete(key.clone());
        txn.commit()?;
    }
    Ok(records.len())
}

/// The safe point from every node's published floor and this node's own
/// running transactions.
fn cluster_safe_point(client: &Client, life_ms: u64) -> duet_storage::Result<u64> {
    let txn = client.begin()?;
    let mut end = FLOOR_PREFIX.to_vec();
    end.push(0xff);
    let floors: Vec<(Option<u64>, u64)> = txn
        .scan(FLOOR_PREFIX, Some(&end), usize::MAX)?
        .iter()
        .filter_map(|(_, v)| decode_floor(v))
        .collect();
    let now = txn.start_ts();
    let own = client.oldest_running();
    drop(txn);
    Ok(safe_point(now, life_ms, &floors, own))
}

/// Every second, merges the columnar replica's grown deltas into its
/// stable layer, keeping the versions that reads within `life_ms`, or by
/// this node's running transactions, can see (only this node's sessions
/// read its replica); every `checkpoint_every` (unless zero), writes a
/// checkpoint of the replica.
pub async fn compaction_loop(
    replica: Arc<duet_columnar::Replica>,
    tso: Arc<dyn TimestampSource>,
    client: Client,
    life_ms: u64,
    checkpoint_every: Duration,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    let mut last_checkpoint = tokio::time::Instant::now();
    loop {
        interval.tick().await;
        let checkpoint =
            !checkpoint_every.is_zero() && last_checkpoint.elapsed() >= checkpoint_every;
        let (replica, tso, client) = (Arc::clone(&replica), Arc::clone(&tso), client.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let now = tso.get_ts().map_err(|e| e.to_string())?;
            let n = replica
                .compact(
                    safe_point(now, life_ms, &[], client.oldest_running()),
                    false,
                )
                .map_err(|e| e.to_string())?;
            if checkpoint {
                replica.checkpoint().map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(n)
        })
        .await;
        if checkpoint {
            last_checkpoint = tokio::time::Instant::now();
        }
        match outcome {
            Ok(Ok(n)) if n > 0 => debug!(tables = n, "columnar compaction done"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "columnar compaction failed"),
            Err(e) => warn!(error = %e, "columnar compaction task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_round_trip() {
        assert_eq!(
            decode_floor(&encode_floor(Some(42), 7)),
            Some((Some(42), 7))
        );
        assert_eq!(decode_floor(&encode_floor(None, 7)), Some((None, 7)));
        assert_eq!(decode_floor(b"short"), None);
        assert!(floor_key(1) < floor_key(2));
        assert!(floor_key(u64::MAX).starts_with(FLOOR_PREFIX));
    }

    #[test]
    fn the_safe_point_stays_below_every_live_floor() {
        let life_ms = 600_000;
        let now_ms = 10_000_000;
        let now = compose_ts(now_ms, 5);
        let by_age = compose_ts(now_ms - life_ms, 0);
        // Nothing running: life_ms behind now.
        assert_eq!(safe_point(now, life_ms, &[], None), by_age);
        assert_eq!(safe_point(now, life_ms, &[(None, now_ms)], None), by_age);
        // A young transaction does not hold GC back.
        let young = compose_ts(now_ms - 1000, 0);
        assert_eq!(
            safe_point(now, life_ms, &[(Some(young), now_ms)], Some(young)),
            by_age
        );
        // An old one does, here or on another node: GC stops just below it.
        let old = compose_ts(now_ms - 2 * life_ms, 3);
        assert_eq!(
            safe_point(
                now,
                life_ms,
                &[(Some(young), now_ms), (Some(old), now_ms - 10)],
                None
            ),
            old - 1
        );
        assert_eq!(
            safe_point(now, life_ms, &[(None, now_ms)], Some(old)),
            old - 1
        );
        // Unless the node that published it went quiet for longer than
        // life_ms while another kept publishing.
        let stale = now_ms - life_ms - 1;
        assert_eq!(
            safe_point(
                now,
                life_ms,
                &[(Some(old), stale), (Some(young), now_ms)],
                None
            ),
            by_age
        );
    }

    #[test]
    fn a_clock_step_past_the_life_time_keeps_every_live_floor() {
        // The oracle's clock stepped 15 minutes ahead of the last floors
        // every node published (a second ago, by the old clock).
        let life_ms = 600_000;
        let before_ms = 10_000_000;
        let now = compose_ts(before_ms + 900_000, 0);
        let running = compose_ts(before_ms - 2_000, 7);
        let floors = [
            (Some(running), before_ms - 1_000),
            (None, before_ms - 900),
            (Some(compose_ts(before_ms - 1_200, 0)), before_ms - 1_200),
        ];
        assert_eq!(safe_point(now, life_ms, &floors, None), running - 1);
        // A node with nothing running bounds it by its publication: what it
        // begins after is above that.
        let idle = [(None, before_ms - 900)];
        assert_eq!(
            safe_point(now, life_ms, &idle, None),
            compose_ts(before_ms - 900, 0) - 1
        );
    }
}
