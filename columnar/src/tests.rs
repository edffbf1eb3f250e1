//! The learner against the row store, deterministically: random
//! transactions (prewrites, commits, rollbacks, interleaved, short and long
//! values), compactions and rebuilds mid-stream, then scans of both at
//! random timestamps must agree, locks included.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, Int64Builder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use duet_storage::codec::Datum;
use duet_storage::codec::key::{prefix_end, row_key, row_prefix};
use duet_storage::codec::row::{decode_row_columns, encode_row};
use duet_storage::engine::memory::MemoryEngine;
use duet_storage::engine::{Cf, Engine, WriteOptions};
use duet_storage::mvcc::MvccReader;
use duet_storage::txn::commands::{self, Command, Commit, Mutation, Op, Prewrite, Rollback};

use crate::schema::{SchemaChange, SchemaSource, TableCodec};
use crate::table::{LayerConfig, ScanRequest};
use crate::{Error, Learner, Replica};
use duet_raft::peer::{Applied, ApplyObserver, Installed};
use duet_raft::region::Region;

const TABLE: i64 = 7;
const DEFINITION: &[u8] = b"m\x02table";

#[derive(Debug)]
struct Codec;

impl TableCodec for Codec {
    fn table_id(&self) -> i64 {
        TABLE
    }
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]))
    }
    fn column_ids(&self) -> Vec<u32> {
        vec![1, 2]
    }
    fn decode(&self, value: &[u8]) -> Result<Vec<Datum>, String> {
        Ok(decode_row_columns(value, &[1, 2])
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|d| d.unwrap_or(Datum::Null))
            .collect())
    }
    fn to_batch(&self, rows: &[Vec<Datum>]) -> Result<RecordBatch, String> {
        let mut a = Int64Builder::new();
        let mut b = StringBuilder::new();
        for r in rows {
            match &r[0] {
                Datum::Int(v) => a.append_value(*v),
                _ => a.append_null(),
            }
            match &r[1] {
                Datum::Bytes(v) => b.append_value(String::from_utf8_lossy(v)),
                _ => b.append_null(),
            }
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(a.finish()), Arc::new(b.finish())];
        RecordBatch::try_new(self.schema(), columns).map_err(|e| e.to_string())
    }
}

struct Schemas;

impl SchemaSource for Schemas {
    fn is_schema_key(&self, key: &[u8]) -> bool {
        key.starts_with(b"m\x02")
    }
    fn decode(&self, _key: &[u8], value: &[u8]) -> Result<SchemaChange, String> {
        match value {
            // A definition may be long (stored apart from its lock).
            v if v.trim_ascii_end() == b"table" => Ok(SchemaChange::Table(Arc::new(Codec))),
            b"no replica" => Ok(SchemaChange::Unreplicated(TABLE)),
            _ => Err("an unknown definition".into()),
        }
    }
}

/// A tiny deterministic generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct World {
    engine: Arc<MemoryEngine>,
    replica: Arc<Replica>,
    /// Fed as a peer's apply feeds it: one log entry per command.
    learner: Learner,
    index: Cell<u64>,
    /// While set, the learner hears nothing (its peer is cut off, and
    /// will be caught up by a snapshot).
    deaf: Cell<bool>,
    ts: u64,
}

impl World {
    fn new(config: LayerConfig) -> World {
        let engine = Arc::new(MemoryEngine::new());
        let replica = Arc::new(Replica::new(Arc::new(Schemas), config));
        World {
            learner: Learner::new(Arc::clone(&replica)),
            engine,
            replica,
            index: Cell::new(5),
            deaf: Cell::new(false),
            ts: 100,
        }
    }

    /// Replaces the replica (and its learner) by one opened on `dir`: from
    /// the checkpoint there and the log, or awaiting a snapshot.
    fn reopen(&mut self, config: &LayerConfig, dir: &std::path::Path) {
        let snap = self.engine.snapshot();
        self.replica =
            Arc::new(Replica::open(Arc::new(Schemas), config.clone(), dir, &snap).unwrap());
        self.learner = Learner::new(Arc::clone(&self.replica));
    }

    /// Region 1 over `[start, end)`.
    fn region(start: &[u8], end: &[u8]) -> Region {
        Region {
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Region::bootstrap(1, &[1], &[])
        }
    }

    /// Installs on the learner, as its peer would, a Raft snapshot of
    /// region 1 over `[start, end)` taken from the row store at the index
    /// it has applied (a new index, as a snapshot ends a stretch of log).
    fn install_snapshot(&self, start: &[u8], end: &[u8]) {
        let region = World::region(start, end);
        let index = self.next_index();
        let mut batch = duet_storage::engine::WriteBatch::new();
        batch.put(
            Cf::Raft,
            duet_raft::keys::apply_state_key(1),
            index.to_be_bytes().to_vec(),
        );
        region.save(&mut batch);
        self.engine.write(&batch, WriteOptions::default()).unwrap();
        let (at, data) = duet_raft::snapshot::build(self.engine.as_ref(), 1).unwrap();
        assert_eq!(at, index);
        let contents = duet_raft::snapshot::decode(&data).unwrap();
        let installed = Installed {
            region: &region,
            data: &contents.writes,
        };
        self.learner.on_snapshot(1, index, 1, &installed);
        self.replica
            .wait_caught_up(Duration::from_secs(10))
            .unwrap();
    }

    fn next_index(&self) -> u64 {
        self.index.set(self.index.get() + 1);
        self.index.get()
    }

    fn tick(&mut self) -> u64 {
        self.ts += 1;
        self.ts
    }

    /// Applies a command to the row store and feeds its writes to the learner.
    fn run(&self, command: Command) -> bool {
        match commands::apply(&self.engine.snapshot(), &command) {
            Ok((mut batch, _)) => {
                let index = self.next_index();
                let writes = batch.modifies.len();
                // The row store applied the entry as its peer would.
                batch.put(
                    Cf::Raft,
                    duet_raft::keys::apply_state_key(1),
                    index.to_be_bytes().to_vec(),
                );
                self.engine.write(&batch, WriteOptions::default()).unwrap();
                let applied = Applied::Command {
                    ok: true,
                    writes: &batch.modifies[..writes],
                };
                if !self.deaf.get() {
                    self.learner.on_applied(1, index, 1, &applied);
                }
                true
            }
            Err(_) => false,
        }
    }

    fn prewrite(&self, mutations: Vec<Mutation>, start_ts: u64) -> bool {
        let primary = mutations[0].key.clone();
        self.run(
            Prewrite {
                mutations,
                primary,
                start_ts,
                lock_ttl: 3_000,
                for_update_ts: 0,
                pessimistic: Vec::new(),
                min_commit_ts: 0,
                try_one_pc: false,
                max_commit_ts: 0,
            }
            .into(),
        )
    }

    fn commit(&self, keys: Vec<Vec<u8>>, start_ts: u64, commit_ts: u64) {
        assert!(
            self.run(
                Commit {
                    keys,
                    start_ts,
                    commit_ts
                }
                .into()
            )
        );
    }

    fn rollback(&self, keys: Vec<Vec<u8>>, start_ts: u64) {
        assert!(self.run(Rollback { keys, start_ts }.into()));
    }

    /// The row store's rows at `ts`, or `None` if a lock blocks the read.
    fn row_store(&self, ts: u64) -> Option<Vec<(Option<i64>, Option<String>)>> {
        let prefix = row_prefix(TABLE);
        let snap = self.engine.snapshot();
        let pairs = match MvccReader::new(&snap).scan(
            &prefix,
            Some(&prefix_end(&prefix)),
            ts,
            usize::MAX,
        ) {
            Ok(p) => p,
            Err(duet_storage::Error::KeyIsLocked(_)) => return None,
            Err(e) => panic!("row store scan: {e}"),
        };
        Some(
            pairs
                .into_iter()
                .map(|(_, v)| {
                    let d = Codec.decode(&v).unwrap();
                    let a = match &d[0] {
                        Datum::Int(x) => Some(*x),
                        _ => None,
                    };
                    let b = match &d[1] {
                        Datum::Bytes(x) => Some(String::from_utf8(x.clone()).unwrap()),
                        _ => None,
                    };
                    (a, b)
                })
                .collect(),
        )
    }

    /// The learner's rows at `ts`, or `None` if it reports a lock.
    fn learner(&self, ts: u64) -> Option<Vec<(Option<i64>, Option<String>)>> {
        let request = ScanRequest {
            read_ts: ts,
            partitions: 2,
            ..ScanRequest::default()
        };
        let out = match self.replica.scan(TABLE, &request) {
            Ok(o) => o,
            Err(Error::Locked(_)) => return None,
            Err(e) => panic!("learner scan: {e}"),
        };
        let mut rows = Vec::new();
        for batch in out.partitions.iter().flat_map(|p| p.batches(7)) {
            let batch = batch.expect("a batch of the scan");
            let a = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let b = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                rows.push((
                    (!a.is_null(i)).then(|| a.value(i)),
                    (!b.is_null(i)).then(|| b.value(i).to_string()),
                ));
            }
        }
        Some(rows)
    }
}

/// Layers small enough to freeze, compact and chunk within a test.
fn small_layers() -> LayerConfig {
    LayerConfig {
        freeze_versions: 8,
        delta_limit: 16,
        chunk_rows: 8,
        ..LayerConfig::default()
    }
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let a = rng.below(1000) as i64;
    // Long strings go through the default CF, short ones inline.
    let len = if rng.below(3) == 0 { 100 } else { 4 };
    let b: String = std::iter::repeat_n(char::from(b'a' + (rng.below(26) as u8)), len).collect();
    encode_row(&[(1, Datum::Int(a)), (2, Datum::Bytes(b.into_bytes()))]).unwrap()
}

fn define(w: &mut World) {
    let (s, c) = (w.tick(), w.tick());
    assert!(w.prewrite(
        vec![Mutation::new(Op::Put, DEFINITION, b"table".to_vec())],
        s
    ));
    w.commit(vec![DEFINITION.to_vec()], s, c);
}

#[test]
fn the_learner_reads_what_the_row_store_reads_at_every_timestamp() {
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let config = small_layers();
        let mut w = World::new(config.clone());
        // Half the seeds keep the stable layer in files, and checkpoint
        // and reopen the replica now and then.
        let dir = tempfile::tempdir().unwrap();
        let on_disk = seed % 2 == 0;
        if on_disk {
            w.reopen(&config, dir.path());
        }
        define(&mut w);
        let first = w.ts;
        // Transactions in flight: (start ts, keys).
        let mut open: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        let (mut rows_compared, mut locks_compared) = (0, 0);
        for step in 0..400 {
            match rng.below(10) {
                0..=4 => {
                    let start = w.tick();
                    let n = 1 + rng.below(3);
                    let mut keys: Vec<Vec<u8>> = (0..n)
                        .map(|_| row_key(TABLE, rng.below(24) as i64))
                        .collect();
                    keys.sort();
                    keys.dedup();
                    let mutations = keys
                        .iter()
                        .map(|k| {
                            if rng.below(5) == 0 {
                                Mutation::new(Op::Delete, k.clone(), Vec::new())
                            } else {
                                Mutation::new(Op::Put, k.clone(), value(&mut rng))
                            }
                        })
                        .collect();
                    if w.prewrite(mutations, start) {
                        open.push((start, keys));
                    }
                }
                5..=7 if !open.is_empty() => {
                    let (start, keys) = open.remove(rng.below(open.len() as u64) as usize);
                    let commit = w.tick();
                    w.commit(keys, start, commit);
                }
                8 if !open.is_empty() => {
                    let (start, keys) = open.remove(rng.below(open.len() as u64) as usize);
                    w.rollback(keys, start);
                }
                _ => {
                    let safe_point = first + rng.below(w.ts - first + 1) / 2;
                    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
                    w.replica.compact(safe_point, rng.below(2) == 0).unwrap();
                }
            }
            // Before every other snapshot of every key, the learner misses
            // a stretch of the log: the snapshot must replace what it
            // holds (locks resolved since).
            let full = (step / 97) % 2 == 0;
            if full && step % 97 == 80 {
                w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
                w.deaf.set(true);
            }
            if step % 97 == 96 {
                w.deaf.set(false);
                // As when the learner peer installs a snapshot: of every
                // key, or of a range that cuts through the table (and its
                // stable chunks).
                w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
                if full {
                    w.install_snapshot(b"", b"");
                } else {
                    let (lo, hi) = (rng.below(12) as i64, 12 + rng.below(12) as i64);
                    w.install_snapshot(&row_key(TABLE, lo), &row_key(TABLE, hi));
                }
                assert_eq!(w.replica.applied(1), Some(w.index.get()));
            }
            if on_disk && step % 131 == 130 && !w.deaf.get() {
                assert!(w.replica.checkpoint().unwrap());
                w.reopen(&config, dir.path());
                assert!(w.replica.from_checkpoint());
            }
            if w.deaf.get() {
                continue;
            }
            // Reads above every safe point used so far agree.
            for _ in 0..2 {
                let ts = (first + (w.ts - first) / 2) + rng.below((w.ts - first) / 2 + 2);
                let row_store = w.row_store(ts);
                assert_eq!(
                    row_store,
                    w.learner(ts),
                    "seed {seed} step {step}: the engines differ at ts {ts}"
                );
                match row_store {
                    Some(rows) => rows_compared += rows.len(),
                    None => locks_compared += 1,
                }
            }
        }
        assert!(
            rows_compared > 1000 && locks_compared > 10,
            "{rows_compared} rows, {locks_compared} locked reads"
        );
        // Settle everything: then the newest state agrees without locks.
        for (start, keys) in std::mem::take(&mut open) {
            let commit = w.tick();
            w.commit(keys, start, commit);
        }
        let now = w.tick();
        let rows = w.learner(now).expect("no locks remain");
        assert_eq!(Some(rows), w.row_store(now));
        w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
        w.replica.compact(now, true).unwrap();
        assert_eq!(w.learner(now), w.row_store(now));
        let status = w.replica.table_status(TABLE).unwrap();
        assert!(status.available);
        assert!(status.chunks >= 1, "{status:?}");
    }
}

#[test]
fn a_delta_past_its_byte_bound_is_compacted_however_large_the_table() {
    let mut w = World::new(LayerConfig {
        freeze_versions: 4,
        delta_limit: usize::MAX,
        delta_bytes: 8 << 10,
        chunk_rows: 16,
        ..LayerConfig::default()
    });
    define(&mut w);
    let big =
        |h: i64| encode_row(&[(1, Datum::Int(h)), (2, Datum::Bytes(vec![b'v'; 200]))]).unwrap();
    for h in 0..20 {
        let (s, c) = (w.tick(), w.tick());
        let k = row_key(TABLE, h);
        assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), big(h))], s));
        w.commit(vec![k], s, c);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    // About 6 KiB: under the bound, and the version limit is never reached.
    assert_eq!(w.replica.compact(w.ts, false).unwrap(), 0);
    let held = w.replica.table_status(TABLE).unwrap().delta_bytes;
    assert!((4 << 10..8 << 10).contains(&held), "{held} bytes");
    for h in 20..40 {
        let (s, c) = (w.tick(), w.tick());
        let k = row_key(TABLE, h);
        assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), big(h))], s));
        w.commit(vec![k], s, c);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert_eq!(w.replica.compact(w.ts, false).unwrap(), 1, "past 8 KiB");
    let status = w.replica.table_status(TABLE).unwrap();
    assert_eq!(status.delta_versions, 0, "{status:?}");
    assert_eq!(status.delta_bytes, 0, "{status:?}");
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));
}

/// A defined table whose compactions make chunks of ten rows.
fn chunked_world() -> World {
    let mut w = World::new(LayerConfig {
        freeze_versions: 4,
        delta_limit: 4,
        chunk_rows: 10,
        ..LayerConfig::default()
    });
    define(&mut w);
    w
}

/// Commits row `h` as `(a = h, b = 'x')`.
fn put_row(w: &mut World, h: i64) {
    let (s, c) = (w.tick(), w.tick());
    let k = row_key(TABLE, h);
    let v = encode_row(&[(1, Datum::Int(h)), (2, Datum::Bytes(b"x".to_vec()))]).unwrap();
    assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), v)], s));
    w.commit(vec![k], s, c);
}

#[test]
fn a_chunk_whose_range_misses_the_filter_is_skipped() {
    let mut w = chunked_world();
    for h in 0..50 {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    w.replica.compact(w.ts, true).unwrap();
    use datafusion::logical_expr::{col, lit};
    let request = ScanRequest {
        read_ts: w.ts,
        filters: vec![col("a").gt_eq(lit(45i64))],
        partitions: 1,
        ..ScanRequest::default()
    };
    let out = w.replica.scan(TABLE, &request).unwrap();
    assert_eq!(out.chunks_pruned, 4);
    assert_eq!(out.chunks_read, 1);
    // The chunk read still holds rows the filter drops (the caller filters).
    assert_eq!(out.rows, 10);
}

#[test]
fn a_scan_makes_its_batches_only_as_they_are_asked_for() {
    let mut w = chunked_world();
    // Even rows go to compacted chunks, odd ones stay in the deltas: a
    // batch interleaves both.
    for h in (0..50).step_by(2) {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    w.replica.compact(w.ts, true).unwrap();
    for h in (1..50).step_by(2) {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    let request = ScanRequest {
        read_ts: w.ts,
        projection: Some(vec![0]),
        partitions: 1,
        ..ScanRequest::default()
    };
    let out = w.replica.scan(TABLE, &request).unwrap();
    assert_eq!(out.rows, 50);
    let [part] = out.partitions.as_slice() else {
        panic!("one part asked for, {} made", out.partitions.len());
    };
    let mut batches = part.batches(16);
    let first = batches.next().unwrap().unwrap();
    let a = |b: &datafusion::arrow::record_batch::RecordBatch| -> Vec<i64> {
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    assert_eq!(first.num_columns(), 1);
    assert_eq!(a(&first), (0..16).collect::<Vec<_>>());
    let rest: Vec<_> = batches.map(|b| b.unwrap()).collect();
    assert_eq!(
        rest.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        [16, 16, 2]
    );
    assert_eq!(a(&rest[2]), [48, 49]);
    // A part can be read again from its start.
    assert_eq!(part.batches(100).next().unwrap().unwrap().num_rows(), 50);
}

#[test]
fn an_entry_that_does_not_decode_stops_the_learner() {
    let mut w = World::new(LayerConfig::default());
    define(&mut w);
    let (s, c) = (w.tick(), w.tick());
    let k = row_key(TABLE, 1);
    assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), vec![9, 9, 9])], s));
    let commit: Command = Commit {
        keys: vec![k],
        start_ts: s,
        commit_ts: c,
    }
    .into();
    let (batch, _) = commands::apply(&w.engine.snapshot(), &commit).unwrap();
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    let e = w.replica.apply_writes(&batch.modifies).unwrap_err();
    assert!(e.to_string().contains("does not decode"), "{e}");
    // Fed through the learner API, the same entry stops the learner and
    // takes its tables out of service; the row store is untouched.
    w.learner.on_applied(
        1,
        9,
        1,
        &Applied::Command {
            ok: true,
            writes: &batch.modifies,
        },
    );
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    let why = w.replica.stopped().expect("the learner stopped");
    assert!(why.contains("region 1 index 9"), "{why}");
    let request = ScanRequest {
        read_ts: c,
        ..ScanRequest::default()
    };
    assert!(matches!(
        w.replica.scan(TABLE, &request),
        Err(Error::Unavailable { .. })
    ));
    assert!(!w.replica.table_status(TABLE).unwrap().available);
}

#[test]
fn a_scan_waits_for_the_learner_to_apply_what_the_row_store_has() {
    let mut w = World::new(LayerConfig::default());
    define(&mut w);
    let (s, c) = (w.tick(), w.tick());
    let k = row_key(TABLE, 1);
    let v = encode_row(&[(1, Datum::Int(5)), (2, Datum::Bytes(b"fresh".to_vec()))]).unwrap();
    assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), v)], s));
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    // Hold the table: the learner cannot apply the commit that follows.
    let table = w.replica.table(TABLE);
    let held = table.lock().unwrap();
    w.commit(vec![k], s, c);
    let reader = {
        let replica = Arc::clone(&w.replica);
        std::thread::spawn(move || {
            let request = ScanRequest {
                read_ts: c,
                ..ScanRequest::default()
            };
            replica.scan(TABLE, &request).map(|o| o.rows)
        })
    };
    // The row store has the commit and the learner does not: a read
    // that may not wait is refused rather than served stale.
    assert!(matches!(
        w.replica.wait_caught_up(Duration::ZERO),
        Err(Error::Behind { behind: 1, .. })
    ));
    assert_eq!(w.replica.backlog(), 1);
    drop(held);
    // The waiting read sees the commit, not the lock before it.
    assert_eq!(reader.join().unwrap().unwrap(), 1);
    assert_eq!(w.learner(c), w.row_store(c));
    assert_eq!(w.replica.applied(1), Some(w.index.get()));
}

#[test]
fn a_checkpoint_restarts_the_replica_where_it_stood() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_layers();
    let mut w = World::new(config.clone());
    w.reopen(&config, dir.path());
    assert!(!w.replica.from_checkpoint());
    define(&mut w);
    let mut rng = Rng(99);
    let first = w.ts;
    for h in 0..60 {
        let (s, c) = (w.tick(), w.tick());
        let k = row_key(TABLE, (h * 7) % 40);
        let m = if h % 9 == 8 {
            Mutation::new(Op::Delete, k.clone(), Vec::new())
        } else {
            Mutation::new(Op::Put, k.clone(), value(&mut rng))
        };
        assert!(w.prewrite(vec![m], s));
        w.commit(vec![k], s, c);
        if h % 20 == 19 {
            w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
            w.replica.compact(first + h as u64, false).unwrap();
        }
    }
    // One transaction still in flight: the checkpoint keeps its lock.
    let (s, locked_at) = (w.tick(), w.tick());
    let k = row_key(TABLE, 3);
    assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), value(&mut rng))], s));
    assert!(w.replica.checkpoint().unwrap());
    let chunks = w.replica.table_status(TABLE).unwrap().chunks;
    assert!(chunks >= 2, "{chunks} chunks");
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        files,
        chunks + 2,
        "one file per chunk, the pending file and the manifest"
    );

    // Reopened at the same applied state: loaded, not rebuilt, and equal.
    w.reopen(&config, dir.path());
    assert!(w.replica.from_checkpoint());
    assert_eq!(w.replica.replayed(), 0);
    assert!(
        dir.path().join("MANIFEST.json").exists(),
        "still the durable one"
    );
    assert_eq!(
        w.learner(locked_at),
        None,
        "the lock is back from the checkpoint"
    );
    w.commit(vec![k], s, locked_at);
    for ts in (first..=w.ts).step_by(5) {
        if ts >= first + 60 {
            assert_eq!(w.learner(ts), w.row_store(ts), "at {ts}");
        }
    }
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));

    // Once the row store moves past a checkpoint, it is not used.
    assert!(w.replica.checkpoint().unwrap());
    let mut batch = duet_storage::engine::WriteBatch::new();
    batch.put(
        duet_storage::engine::Cf::Raft,
        duet_raft::keys::apply_state_key(1),
        999u64.to_be_bytes().to_vec(),
    );
    w.engine.write(&batch, WriteOptions::default()).unwrap();
    w.reopen(&config, dir.path());
    assert!(!w.replica.from_checkpoint());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // The replica lacks everything: its learner peer asks for a snapshot,
    // and the table is not served meanwhile.
    assert!(w.replica.awaits_snapshots());
    assert!(w.learner.wants_snapshot(&World::region(b"", b"")));
    assert!(w.replica.table_status(TABLE).is_none_or(|s| !s.available));
    let request = ScanRequest {
        read_ts: w.ts,
        ..ScanRequest::default()
    };
    assert!(matches!(
        w.replica.scan(TABLE, &request),
        Err(Error::Unavailable { .. })
    ));
    assert!(!w.replica.checkpoint().unwrap(), "nothing whole to keep");
    w.install_snapshot(b"", b"");
    assert!(!w.replica.awaits_snapshots());
    assert!(!w.learner.wants_snapshot(&World::region(b"", b"")));
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));
    assert!(w.replica.checkpoint().unwrap());
}

/// Writes `n` rows (handles `from..from + n`) in one transaction each.
fn write_rows(w: &mut World, from: i64, n: i64, rng: &mut Rng) {
    for h in from..from + n {
        let (s, c) = (w.tick(), w.tick());
        let k = row_key(TABLE, h);
        assert!(w.prewrite(vec![Mutation::new(Op::Put, k.clone(), value(rng))], s));
        w.commit(vec![k], s, c);
    }
}

fn set_definition(w: &mut World, value: &[u8]) {
    let (s, c) = (w.tick(), w.tick());
    assert!(w.prewrite(vec![Mutation::new(Op::Put, DEFINITION, value.to_vec())], s));
    w.commit(vec![DEFINITION.to_vec()], s, c);
}

#[test]
fn a_table_given_a_replica_is_copied_by_snapshots_of_its_regions() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_layers();
    let mut w = World::new(config.clone());
    w.reopen(&config, dir.path());
    let mut rng = Rng(5);
    set_definition(&mut w, b"no replica");
    write_rows(&mut w, 0, 30, &mut rng);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    // Without a replica its rows are not kept (nor do they block a
    // checkpoint).
    assert!(w.replica.table_status(TABLE).is_none());
    assert!(w.replica.checkpoint().unwrap());
    w.reopen(&config, dir.path());
    assert!(w.replica.from_checkpoint());
    let (lower, upper) = (row_key(TABLE, 0), row_key(TABLE, 15));
    let rest = prefix_end(&row_prefix(TABLE));
    let metadata = (b"m".to_vec(), b"n".to_vec());
    assert!(!w.learner.wants_snapshot(&World::region(&lower, &upper)));

    // Given one, it awaits snapshots of the regions over its rows, and
    // takes new rows from the log meanwhile.
    set_definition(&mut w, b"table");
    write_rows(&mut w, 30, 5, &mut rng);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert!(w.replica.awaits_snapshots());
    assert!(!w.replica.table_status(TABLE).unwrap().available);
    assert!(
        !w.learner
            .wants_snapshot(&World::region(&metadata.0, &metadata.1))
    );
    assert!(w.learner.wants_snapshot(&World::region(&lower, &upper)));
    assert!(w.learner.wants_snapshot(&World::region(b"", b"")));

    // One region's snapshot covers part of the table; rows change in the
    // other part meanwhile.
    w.install_snapshot(b"", &upper);
    assert!(!w.learner.wants_snapshot(&World::region(&lower, &upper)));
    assert!(w.learner.wants_snapshot(&World::region(&upper, &rest)));
    assert!(!w.replica.table_status(TABLE).unwrap().available);
    write_rows(&mut w, 10, 10, &mut rng);
    // A checkpoint now would miss rows: none is written.
    assert!(!w.replica.checkpoint().unwrap());
    w.install_snapshot(&upper, b"");
    assert!(!w.replica.awaits_snapshots());
    assert!(w.replica.table_status(TABLE).unwrap().available);
    assert_eq!(w.learner(w.ts).unwrap().len(), 35);
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));
}

#[test]
fn a_definition_in_flight_across_a_snapshot_commits_on_the_learner() {
    let config = small_layers();
    let mut w = World::new(config);
    let mut rng = Rng(11);
    define(&mut w);
    write_rows(&mut w, 0, 10, &mut rng);
    // Cut off, the learner misses the prewrite of a new definition too
    // long to ride in its lock; a snapshot of the region then carries the
    // lock and the staged value.
    w.deaf.set(true);
    let long = [&b"table"[..], &[b' '; 400]].concat();
    let s = w.tick();
    assert!(w.prewrite(vec![Mutation::new(Op::Put, DEFINITION, long)], s));
    w.install_snapshot(b"", b"");
    w.deaf.set(false);
    // The commit after the snapshot finds the value it commits.
    let c = w.tick();
    w.commit(vec![DEFINITION.to_vec()], s, c);
    write_rows(&mut w, 10, 5, &mut rng);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert_eq!(w.replica.stopped(), None);
    assert_eq!(w.learner(w.ts).unwrap().len(), 15);
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));
}

/// Found by the fault suite (a node killed during its first start): the
/// replica restarts without a checkpoint, so it awaits snapshots of every
/// range; a commit whose long value was prewritten before the restart
/// must wait for that snapshot, not stop the learner.
#[test]
fn a_commit_whose_value_came_before_a_restart_waits_for_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_layers();
    let mut w = World::new(config.clone());
    let mut rng = Rng(13);
    define(&mut w);
    write_rows(&mut w, 0, 10, &mut rng);
    let long = encode_row(&[(1, Datum::Int(7)), (2, Datum::Bytes(vec![b'x'; 300]))]).unwrap();
    let (s, key) = (w.tick(), row_key(TABLE, 100));
    assert!(w.prewrite(vec![Mutation::new(Op::Put, key.clone(), long)], s));
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    w.reopen(&config, dir.path());
    assert!(w.replica.awaits_snapshots());
    let c = w.tick();
    w.commit(vec![key], s, c);
    write_rows(&mut w, 10, 3, &mut rng);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert_eq!(w.replica.stopped(), None);
    w.install_snapshot(b"", b"");
    assert!(!w.replica.awaits_snapshots());
    assert_eq!(w.learner(w.ts).unwrap().len(), 14);
    assert_eq!(w.learner(w.ts), w.row_store(w.ts));
}

#[test]
fn an_awaited_range_is_left_until_snapshots_cover_every_part() {
    let a = crate::replica::Awaiting::new(b"c", b"k");
    assert_eq!(a.left(), vec![(b"c".to_vec(), b"k".to_vec())]);
    let a = a.cover(b"a", b"d").cover(b"f", b"g").cover(b"j", b"");
    assert_eq!(
        a.left(),
        vec![
            (b"d".to_vec(), b"f".to_vec()),
            (b"g".to_vec(), b"j".to_vec())
        ]
    );
    let a = a.cover(b"d", b"f").cover(b"e", b"j");
    assert!(a.left().is_empty());
    let all = crate::replica::Awaiting::new(b"", b"").cover(b"", b"m");
    assert_eq!(all.left(), vec![(b"m".to_vec(), Vec::new())]);
    assert!(all.cover(b"m", b"").left().is_empty());
}

#[test]
fn a_segment_file_keeps_its_columns_min_and_max() {
    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Int64Array, StringArray, UInt64Array,
    };
    use datafusion::scalar::ScalarValue;
    let dir = tempfile::tempdir().unwrap();
    let segments = crate::segment::SegmentDir::open(dir.path()).unwrap();
    let arrays = crate::segment::ChunkArrays {
        columns: vec![
            Arc::new(Int64Array::from(vec![Some(3), None, Some(-1)])),
            Arc::new(StringArray::from(vec![None::<&str>, None, None])),
        ],
        keys: BinaryArray::from_vec(vec![b"a", b"b", b"c"]),
        ts: UInt64Array::from(vec![1, 2, 3]),
        deleted: BooleanArray::from(vec![false, true, false]),
    };
    let chunk = crate::table::Chunk::new(TABLE, arrays, Some(&segments)).unwrap();
    let expected = vec![
        Some((ScalarValue::Int64(Some(-1)), ScalarValue::Int64(Some(3)))),
        None,
    ];
    assert_eq!(chunk.stats(), &expected);
    // Read back from the file, not recomputed from the arrays.
    let name = chunk.file().unwrap().name();
    let (_, arrays, stats) = segments.adopt(&name).unwrap();
    assert_eq!(stats.as_ref(), Some(&expected));
    assert_eq!(arrays.keys.len(), 3);
}

#[test]
fn a_region_the_learner_store_left_takes_its_rows_unless_another_keeps_them() {
    let mut w = chunked_world();
    for h in 0..30 {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    w.replica.compact(w.ts, true).unwrap();
    for h in 30..40 {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert!(w.replica.applied(1).is_some());
    let ts = w.ts;
    let handles = |w: &World| -> Vec<i64> {
        (w.learner(ts).unwrap().into_iter())
            .filter_map(|(a, _)| a)
            .collect()
    };
    // Another replica on the store holds the range (a merge's target):
    // the rows stay, the position goes.
    let left = World::region(&row_key(TABLE, 10), &row_key(TABLE, 35));
    w.learner.on_destroyed(&left, true);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    assert_eq!(w.replica.applied(1), None);
    assert_eq!(handles(&w).len(), 40);
    // Nobody keeps it: its rows go, in the compacted chunks and the delta
    // alike, and only those.
    w.learner.on_destroyed(&left, false);
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    let want: Vec<i64> = (0..10).chain(35..40).collect();
    assert_eq!(handles(&w), want);
}

#[test]
fn a_scan_of_a_key_range_returns_only_its_rows_from_chunks_and_delta() {
    let mut w = chunked_world();
    for h in 0..30 {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    w.replica.compact(w.ts, true).unwrap();
    for h in (25..40).rev() {
        put_row(&mut w, h);
    }
    w.replica.wait_caught_up(Duration::from_secs(10)).unwrap();
    let scan = |keys: Option<(Vec<u8>, Vec<u8>)>| -> (Vec<i64>, usize) {
        let request = ScanRequest {
            read_ts: w.ts,
            partitions: 1,
            keys,
            ..ScanRequest::default()
        };
        let out = w.replica.scan(TABLE, &request).unwrap();
        let mut got = Vec::new();
        for batch in out.partitions.iter().flat_map(|p| p.batches(100)) {
            let batch = batch.unwrap();
            let a = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            got.extend(a.iter().flatten());
        }
        (got, out.chunks_pruned)
    };
    let (all, _) = scan(None);
    assert_eq!(all, (0..40).collect::<Vec<_>>());
    // Rows 12..33: part of the chunks (the others skipped), part of the
    // delta, in key order.
    let (part, pruned) = scan(Some((row_key(TABLE, 12), row_key(TABLE, 33))));
    assert_eq!(part, (12..33).collect::<Vec<_>>());
    assert!(pruned >= 1, "a chunk wholly outside the range is skipped");
    // An open end, and a range past the table's rows.
    let (tail, _) = scan(Some((row_key(TABLE, 37), Vec::new())));
    assert_eq!(tail, [37, 38, 39]);
    let (none, _) = scan(Some((row_key(TABLE, 100), Vec::new())));
    assert!(none.is_empty());
}
