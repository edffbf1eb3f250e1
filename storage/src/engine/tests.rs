//! One conformance suite for every engine: each check runs on the in-memory
//! engine and on RocksDB in a temporary directory.

use super::memory::MemoryEngine;
use super::rocks::{RocksConfig, RocksEngine};
use super::*;

/// Runs `check` against both engines.
fn both(check: impl Fn(&dyn DynEngine)) {
    check(&MemoryEngine::new());
    let dir = tempfile::tempdir().unwrap();
    check(&RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap());
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An object-safe view of an engine for the suite.
trait DynEngine {
    fn put(&self, cf: Cf, k: &[u8], v: &[u8]);
    fn write(&self, b: &WriteBatch);
    fn get(&self, cf: Cf, k: &[u8]) -> Option<Vec<u8>>;
    /// Keys and values of `cf` within `opts`, walking forward then backward.
    fn scan(&self, cf: Cf, opts: IterOptions) -> (Pairs, Pairs);
    /// Takes a snapshot, runs `between`, then returns what the snapshot sees of `k`.
    fn snapshot_get(&self, cf: Cf, k: &[u8], between: &dyn Fn()) -> Option<Vec<u8>>;
    /// `seek_for_prev(k)` then `seek(k)` results.
    fn seeks(&self, cf: Cf, opts: IterOptions, k: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>);
}

impl<E: Engine> DynEngine for E {
    fn put(&self, cf: Cf, k: &[u8], v: &[u8]) {
        let mut b = WriteBatch::new();
        b.put(cf, k, v);
        Engine::write(self, &b, WriteOptions::default()).unwrap();
    }

    fn write(&self, b: &WriteBatch) {
        Engine::write(self, b, WriteOptions { sync: true }).unwrap();
    }

    fn get(&self, cf: Cf, k: &[u8]) -> Option<Vec<u8>> {
        Engine::get(self, cf, k).unwrap()
    }

    fn scan(&self, cf: Cf, opts: IterOptions) -> (Pairs, Pairs) {
        let snap = self.snapshot();
        let mut it = snap.iter(cf, opts).unwrap();
        let mut fwd = Vec::new();
        let mut ok = it.seek_to_first().unwrap();
        while ok {
            fwd.push((it.key().to_vec(), it.value().to_vec()));
            ok = it.next().unwrap();
        }
        let mut back = Vec::new();
        let mut ok = it.seek_to_last().unwrap();
        while ok {
            back.push((it.key().to_vec(), it.value().to_vec()));
            ok = it.prev().unwrap();
        }
        (fwd, back)
    }

    fn snapshot_get(&self, cf: Cf, k: &[u8], between: &dyn Fn()) -> Option<Vec<u8>> {
        let snap = self.snapshot();
        between();
        snap.get(cf, k).unwrap()
    }

    fn seeks(&self, cf: Cf, opts: IterOptions, k: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let snap = self.snapshot();
        let mut it = snap.iter(cf, opts).unwrap();
        let prev = it.seek_for_prev(k).unwrap().then(|| it.key().to_vec());
        let next = it.seek(k).unwrap().then(|| it.key().to_vec());
        (prev, next)
    }
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn put_get_delete_and_empty_values() {
    both(|e| {
        assert_eq!(e.get(Cf::Default, b"a"), None);
        e.put(Cf::Default, b"a", b"1");
        e.put(Cf::Default, b"empty", b"");
        assert_eq!(e.get(Cf::Default, b"a"), Some(b"1".to_vec()));
        assert_eq!(e.get(Cf::Default, b"empty"), Some(vec![]));
        let mut b = WriteBatch::new();
        b.delete(Cf::Default, b"a".to_vec());
        e.write(&b);
        assert_eq!(e.get(Cf::Default, b"a"), None);
    });
}

#[test]
fn column_families_are_separate() {
    both(|e| {
        for (i, cf) in Cf::ALL.iter().enumerate() {
            e.put(*cf, b"k", &[i as u8]);
        }
        for (i, cf) in Cf::ALL.iter().enumerate() {
            assert_eq!(e.get(*cf, b"k"), Some(vec![i as u8]), "{cf:?}");
        }
    });
}

#[test]
fn batches_apply_in_order_and_atomically() {
    both(|e| {
        let mut b = WriteBatch::new();
        b.put(Cf::Lock, b"x".to_vec(), b"1".to_vec());
        b.put(Cf::Lock, b"x".to_vec(), b"2".to_vec());
        b.put(Cf::Write, b"y".to_vec(), b"3".to_vec());
        let seen = e.snapshot_get(Cf::Write, b"y", &|| e.write(&b));
        assert_eq!(
            seen, None,
            "a snapshot taken before the batch sees none of it"
        );
        assert_eq!(
            e.get(Cf::Lock, b"x"),
            Some(b"2".to_vec()),
            "later change wins"
        );
        assert_eq!(e.get(Cf::Write, b"y"), Some(b"3".to_vec()));
    });
}

#[test]
fn snapshots_do_not_see_later_writes() {
    both(|e| {
        e.put(Cf::Default, b"k", b"old");
        let seen = e.snapshot_get(Cf::Default, b"k", &|| e.put(Cf::Default, b"k", b"new"));
        assert_eq!(seen, Some(b"old".to_vec()));
        assert_eq!(e.get(Cf::Default, b"k"), Some(b"new".to_vec()));
    });
}

#[test]
fn iteration_is_bytewise_and_bounded() {
    both(|e| {
        for k in ["b", "a", "c", "a\x00", "\x7f", "\u{00ff}", "ab"] {
            e.put(Cf::Write, k.as_bytes(), b"v");
        }
        let (fwd, back) = e.scan(Cf::Write, IterOptions::default());
        let keys: Vec<&[u8]> = fwd.iter().map(|(k, _)| k.as_slice()).collect();
        let expected: Vec<&[u8]> = vec![
            b"a",
            b"a\x00",
            b"ab",
            b"b",
            b"c",
            b"\x7f",
            "\u{00ff}".as_bytes(),
        ];
        assert_eq!(keys, expected);
        let mut rev = back.clone();
        rev.reverse();
        assert_eq!(rev, fwd, "backward is forward reversed");

        let (fwd, back) = e.scan(
            Cf::Write,
            IterOptions::range(b"a\x00".to_vec(), b"c".to_vec()),
        );
        assert_eq!(fwd, vec![kv("a\x00", "v"), kv("ab", "v"), kv("b", "v")]);
        assert_eq!(back.len(), 3);
        let (fwd, _) = e.scan(Cf::Write, IterOptions::range(b"x".to_vec(), b"y".to_vec()));
        assert!(fwd.is_empty());
    });
}

#[test]
fn seeks_respect_bounds() {
    both(|e| {
        for k in ["b", "d", "f"] {
            e.put(Cf::Default, k.as_bytes(), b"v");
        }
        let all = IterOptions::default();
        assert_eq!(
            e.seeks(Cf::Default, all.clone(), b"c"),
            (Some(b"b".to_vec()), Some(b"d".to_vec()))
        );
        assert_eq!(
            e.seeks(Cf::Default, all.clone(), b"d"),
            (Some(b"d".to_vec()), Some(b"d".to_vec()))
        );
        assert_eq!(
            e.seeks(Cf::Default, all.clone(), b"a"),
            (None, Some(b"b".to_vec()))
        );
        assert_eq!(e.seeks(Cf::Default, all, b"g"), (Some(b"f".to_vec()), None));
        let bounded = IterOptions::range(b"c".to_vec(), b"f".to_vec());
        assert_eq!(
            e.seeks(Cf::Default, bounded.clone(), b"a"),
            (None, Some(b"d".to_vec()))
        );
        assert_eq!(
            e.seeks(Cf::Default, bounded.clone(), b"z"),
            (Some(b"d".to_vec()), None)
        );
        assert_eq!(
            e.seeks(Cf::Default, bounded, b"f"),
            (Some(b"d".to_vec()), None)
        );
    });
}

#[test]
fn delete_range_removes_half_open_range() {
    both(|e| {
        for k in ["a", "b", "c", "d"] {
            e.put(Cf::Raft, k.as_bytes(), b"v");
        }
        let mut b = WriteBatch::new();
        b.delete_range(Cf::Raft, b"b".to_vec(), b"d".to_vec());
        b.delete_range(Cf::Raft, b"z".to_vec(), b"a".to_vec()); // empty: no effect, no panic
        e.write(&b);
        let (fwd, _) = e.scan(Cf::Raft, IterOptions::default());
        assert_eq!(fwd, vec![kv("a", "v"), kv("d", "v")]);
    });
}

#[test]
fn rocks_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(Cf::Write, b"durable".to_vec(), b"yes".to_vec());
        Engine::write(&e, &b, WriteOptions { sync: true }).unwrap();
    }
    let e = RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap();
    assert_eq!(
        Engine::get(&e, Cf::Write, b"durable").unwrap(),
        Some(b"yes".to_vec())
    );
}

#[test]
fn rocks_snapshot_outlives_its_creator_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let snap = {
        let e = RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap();
        e.put(Cf::Lock, b"k", b"v");
        e.snapshot()
    };
    assert_eq!(snap.get(Cf::Lock, b"k").unwrap(), Some(b"v".to_vec()));
}
