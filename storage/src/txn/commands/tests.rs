//! A golden script of Percolator actions: each step prints the raw keys it
//! writes (hex) with their decoded meaning, so any change to the encoding or
//! to an action's effects shows up as a diff of `testdata/percolator.golden`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p duet-storage golden`.

use std::fmt::Write as _;

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Cf, Engine, Modify, WriteOptions};
use crate::gc::gc;
use crate::mvcc::{Lock, MvccReader, SHORT_VALUE_MAX_LEN, Write, compose_ts, decode_key, split_ts};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn printable(b: &[u8]) -> String {
    if b.len() > 16 {
        return format!("<{} bytes>", b.len());
    }
    b.iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '.' })
        .collect()
}

fn describe(cf: Cf, key: &[u8], value: Option<&[u8]>) -> String {
    let (user, ts) = match cf {
        Cf::Lock => (decode_key(key).unwrap(), None),
        _ => {
            let (enc, ts) = split_ts(key).unwrap();
            (decode_key(enc).unwrap(), Some(ts))
        }
    };
    let at = ts.map(|t| format!("@{t}")).unwrap_or_default();
    let what = match (cf, value) {
        (_, None) => String::new(),
        (Cf::Lock, Some(v)) => {
            let l = Lock::from_bytes(v).unwrap();
            format!(
                " = {:?} primary={} start={} ttl={} for_update={} min_commit={} short={:?}",
                l.lock_kind(),
                printable(&l.primary),
                l.start_ts,
                l.ttl,
                l.for_update_ts,
                l.min_commit_ts,
                l.short_value.as_deref().map(printable)
            )
        }
        (Cf::Write, Some(v)) => {
            let w = Write::from_bytes(v).unwrap();
            format!(
                " = {:?} start={} short={:?}",
                w.write_kind(),
                w.start_ts,
                w.short_value.as_deref().map(printable)
            )
        }
        (_, Some(v)) => format!(" = {}", printable(v)),
    };
    format!(
        "{:<7} {} ({}{at}){what}",
        cf.name(),
        hex(key),
        printable(&user)
    )
}

struct Script {
    engine: MemoryEngine,
    out: String,
}

impl Script {
    fn step(&mut self, title: &str, cmd: Command) {
        let _ = writeln!(self.out, "> {title}");
        let snap = self.engine.snapshot();
        // Every step goes through the log's form, as on a replica; it must
        // say exactly what running the command says.
        let effects = Effects::compute(&snap, &cmd).expect("no engine failure");
        let (batch, replicated) = Effects::from_bytes(&effects.to_bytes())
            .and_then(Effects::into_parts)
            .expect("effects decode");
        match apply(&snap, &cmd) {
            Ok((direct, response)) => {
                assert_eq!(batch, direct, "{title}");
                assert_eq!(replicated.as_ref().ok(), Some(&response), "{title}");
                if response != Response::Done {
                    let _ = writeln!(self.out, "  {response:?}");
                }
                self.show(&batch);
                self.engine.write(&batch, WriteOptions::default()).unwrap();
            }
            Err(e) => {
                assert!(batch.is_empty(), "{title}");
                let replicated = replicated.expect_err("replicated as a failure");
                assert_eq!(format!("{replicated:?}"), format!("{e:?}"), "{title}");
                let _ = writeln!(self.out, "  error: {e}");
            }
        }
    }

    fn show(&mut self, batch: &crate::engine::WriteBatch) {
        for m in &batch.modifies {
            let line = match m {
                Modify::Put { cf, key, value } => {
                    format!("  put    {}", describe(*cf, key, Some(value)))
                }
                Modify::Delete { cf, key } => format!("  delete {}", describe(*cf, key, None)),
                Modify::DeleteRange { cf, .. } => format!("  delete-range {}", cf.name()),
            };
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn read(&mut self, key: &[u8], ts: u64) {
        let snap = self.engine.snapshot();
        let got = MvccReader::new(&snap).get(key, ts);
        let shown = match got {
            Ok(v) => format!("{:?}", v.as_deref().map(printable)),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(self.out, "> read {} at {ts}\n  {shown}", printable(key));
    }
}

fn put(key: &str, value: &[u8]) -> Mutation {
    Mutation::new(Op::Put, key.as_bytes(), value)
}

fn keys(ks: &[&str]) -> Vec<Vec<u8>> {
    ks.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn prewrite(mutations: Vec<Mutation>, primary: &str, start_ts: u64) -> Prewrite {
    Prewrite {
        mutations,
        primary: primary.as_bytes().to_vec(),
        start_ts,
        lock_ttl: 3000,
        for_update_ts: 0,
        pessimistic: vec![],
        min_commit_ts: 0,
        try_one_pc: false,
        max_commit_ts: 0,
    }
}

#[test]
fn golden_percolator_script() {
    let mut s = Script {
        engine: MemoryEngine::new(),
        out: String::new(),
    };
    let long = vec![b'x'; SHORT_VALUE_MAX_LEN + 1];
    s.step(
        "prewrite t10: put k1=v1 (primary), put k2=<256 bytes>, delete k3",
        prewrite(
            vec![
                put("k1", b"v1"),
                put("k2", &long),
                Mutation::new(Op::Delete, "k3", ""),
            ],
            "k1",
            10,
        )
        .into(),
    );
    s.read(b"k1", 15);
    s.read(b"k1", 5);
    s.step(
        "commit t10 primary at 20",
        Commit {
            keys: keys(&["k1"]),
            start_ts: 10,
            commit_ts: 20,
        }
        .into(),
    );
    s.step(
        "check t10 through its primary",
        CheckTxnStatus {
            primary: b"k1".to_vec(),
            lock_ts: 10,
            current_ts: 25,
            rollback_if_not_exist: false,
        }
        .into(),
    );
    s.step(
        "resolve t10's secondaries as committed at 20",
        ResolveLock {
            keys: keys(&["k2", "k3"]),
            start_ts: 10,
            commit_ts: 20,
        }
        .into(),
    );
    s.read(b"k2", 20);
    s.read(b"k2", 19);
    s.step(
        "prewrite t15: put k1 (conflicts with the commit at 20)",
        prewrite(vec![put("k1", b"late")], "k1", 15).into(),
    );
    s.step(
        "commit t10 again (idempotent)",
        Commit {
            keys: keys(&["k1"]),
            start_ts: 10,
            commit_ts: 20,
        }
        .into(),
    );
    s.step(
        "rollback t30 on k4 before it prewrites",
        Rollback {
            keys: keys(&["k4"]),
            start_ts: 30,
        }
        .into(),
    );
    s.step(
        "late prewrite t30 on k4",
        prewrite(vec![put("k4", b"v")], "k4", 30).into(),
    );
    s.step(
        "pessimistic lock t40 (for_update 41) on k1",
        AcquirePessimisticLock {
            keys: keys(&["k1"]),
            primary: b"k1".to_vec(),
            start_ts: 40,
            for_update_ts: 41,
            lock_ttl: 3000,
            wait_ms: 0,
        }
        .into(),
    );
    s.read(b"k1", 45);
    s.step(
        "prewrite t35 on k1 meets t40's lock",
        prewrite(vec![put("k1", b"x")], "k1", 35).into(),
    );
    let mut pw = prewrite(vec![put("k1", b"v40")], "k1", 40);
    pw.for_update_ts = 41;
    pw.pessimistic = vec![true];
    s.step("prewrite t40 over its pessimistic lock", pw.into());
    s.step(
        "commit t40 at 42",
        Commit {
            keys: keys(&["k1"]),
            start_ts: 40,
            commit_ts: 42,
        }
        .into(),
    );
    let (t, later) = (compose_ts(1000, 0), compose_ts(1000 + 3000, 0));
    s.step(
        &format!("prewrite t{t}: insert k5"),
        prewrite(vec![Mutation::new(Op::Insert, "k5", "v5")], "k5", t).into(),
    );
    s.step(
        "check t while its lock lives",
        CheckTxnStatus {
            primary: b"k5".to_vec(),
            lock_ts: t,
            current_ts: later - 1,
            rollback_if_not_exist: true,
        }
        .into(),
    );
    s.step(
        "check t after its TTL",
        CheckTxnStatus {
            primary: b"k5".to_vec(),
            lock_ts: t,
            current_ts: later,
            rollback_if_not_exist: true,
        }
        .into(),
    );
    s.step(
        "insert k1 that exists",
        prewrite(
            vec![Mutation::new(Op::Insert, "k1", "dup")],
            "k1",
            later + 1,
        )
        .into(),
    );
    let snap = s.engine.snapshot();
    let batch = gc(&snap, 50, b"", None).unwrap();
    let _ = writeln!(s.out, "> gc at safe point 50");
    s.show(&batch);
    // The checkout being tested (cargo sets it at run time; a test binary
    // reused from another checkout must not read that one's files).
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = std::path::Path::new(&dir).join("src/txn/commands/testdata/percolator.golden");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &s.out).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        s.out, expected,
        "golden output changed; rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn commands_round_trip_through_prost_and_garbage_is_an_error() {
    let cmd: Command = prewrite(vec![put("k", b"v")], "k", 7).into();
    assert_eq!(Command::from_bytes(&cmd.to_bytes()).unwrap(), cmd);
    assert!(Command::from_bytes(&[0x0a, 0xff, 0xff]).is_err());
    let empty = Command { kind: None };
    assert!(apply(&MemoryEngine::new().snapshot(), &empty).is_err());
    // A failure of the replica itself is not an effect: it is not replicated.
    assert!(Effects::compute(&MemoryEngine::new().snapshot(), &empty).is_err());
    assert!(Effects::from_bytes(&[0x0a, 0xff, 0xff]).is_err());
    let bad_cf = Effects {
        writes: vec![effects::Write {
            cf: 9,
            ..Default::default()
        }],
        outcome: None,
    };
    assert!(bad_cf.into_parts().is_err());
}

#[test]
fn every_failure_and_status_survives_the_log() {
    use crate::mvcc::{LockInfo, LockKind};
    let failures = vec![
        Error::KeyIsLocked(Box::new(LockInfo {
            key: b"k".to_vec(),
            primary: b"p".to_vec(),
            start_ts: 3,
            ttl: 40,
            kind: LockKind::Pessimistic,
            min_commit_ts: 5,
        })),
        Error::WriteConflict {
            start_ts: 1,
            conflict_start_ts: 2,
            conflict_commit_ts: 3,
            key: b"k".to_vec(),
            primary: b"p".to_vec(),
        },
        Error::TxnLockNotFound {
            start_ts: 4,
            key: b"k".to_vec(),
        },
        Error::RolledBack { start_ts: 5 },
        Error::AlreadyCommitted {
            start_ts: 6,
            commit_ts: 7,
        },
        Error::CommitTsExpired {
            start_ts: 8,
            commit_ts: 9,
            min_commit_ts: 10,
        },
        Error::InvalidTimestamp {
            start_ts: 11,
            commit_ts: 11,
        },
        Error::AlreadyExist { key: b"u".to_vec() },
        Error::GcBlocked {
            lock_ts: 12,
            safe_point: 13,
        },
    ];
    for e in failures {
        let f = effects::Failure::from_error(&e).expect("a command failure");
        let back = f.into_error().unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
    }
    assert!(effects::Failure::from_error(&Error::Engine("disk".into())).is_none());
    let statuses = [
        TxnStatus::Locked {
            ttl: 1,
            min_commit_ts: 2,
        },
        TxnStatus::Committed { commit_ts: 3 },
        TxnStatus::RolledBack,
        TxnStatus::TtlExpired,
        TxnStatus::LockNotExistRolledBack,
        TxnStatus::NotFound,
    ];
    for s in statuses {
        let back = effects::Status::from(s.clone()).into_status().unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn restrict_splits_a_command_by_key_range() {
    let mut p = prewrite(
        vec![put("a", b"1"), put("m", b"2"), put("z", b"3")],
        "a",
        10,
    );
    p.pessimistic = vec![true, false, true];
    let cmd: Command = p.clone().into();
    let left = cmd.restrict(b"", b"m").expect("a is left of m");
    let right = cmd.restrict(b"m", b"").expect("m and z are right");
    match (left.kind, right.kind) {
        (Some(command::Kind::Prewrite(l)), Some(command::Kind::Prewrite(r))) => {
            assert_eq!(l.mutations, vec![put("a", b"1")]);
            assert_eq!(l.pessimistic, vec![true]);
            assert_eq!(r.mutations, vec![put("m", b"2"), put("z", b"3")]);
            assert_eq!(r.pessimistic, vec![false, true]);
            assert_eq!((l.primary, r.start_ts), (b"a".to_vec(), 10));
        }
        other => panic!("prewrites expected, got {other:?}"),
    }
    assert!(cmd.restrict(b"b", b"c").is_none(), "no key in [b, c)");
    assert!(cmd.within(b"", b"") && !cmd.within(b"b", b""));

    let status: Command = CheckTxnStatus {
        primary: b"k".to_vec(),
        ..Default::default()
    }
    .into();
    assert!(status.restrict(b"a", b"l").is_some() && status.restrict(b"l", b"").is_none());
    let limit: Command = TsoLimit { limit: 5 }.into();
    assert!(limit.restrict(b"", b"m").is_some() && limit.restrict(b"m", b"").is_none());

    let gc: Command = Gc {
        safe_point: 7,
        start: b"c".to_vec(),
        end: Vec::new(),
    }
    .into();
    assert_eq!(
        gc.restrict(b"", b"m"),
        Some(
            Gc {
                safe_point: 7,
                start: b"c".to_vec(),
                end: b"m".to_vec()
            }
            .into()
        )
    );
    assert_eq!(
        gc.restrict(b"m", b""),
        Some(
            Gc {
                safe_point: 7,
                start: b"m".to_vec(),
                end: Vec::new()
            }
            .into()
        )
    );
    assert!(gc.restrict(b"a", b"b").is_none());
}

#[test]
fn destroying_a_range_removes_every_version_value_and_lock_in_it() {
    let mut s = Script {
        engine: MemoryEngine::new(),
        out: String::new(),
    };
    let long = vec![b'x'; SHORT_VALUE_MAX_LEN + 1];
    let all = ["a", "t1", "t2", "t3", "u"];
    s.step(
        "prewrite t10",
        prewrite(all.iter().map(|k| put(k, &long)).collect(), "a", 10).into(),
    );
    s.step(
        "commit t10 at 20",
        Commit {
            keys: keys(&all),
            start_ts: 10,
            commit_ts: 20,
        }
        .into(),
    );
    // A second version of t2, and a lock left on t3.
    s.step(
        "prewrite t30",
        prewrite(vec![put("t2", b"v2")], "t2", 30).into(),
    );
    s.step(
        "commit t30 at 40",
        Commit {
            keys: keys(&["t2"]),
            start_ts: 30,
            commit_ts: 40,
        }
        .into(),
    );
    s.step(
        "prewrite t50",
        prewrite(vec![put("t3", b"v3")], "t3", 50).into(),
    );
    let destroy: Command = DestroyRange {
        start: b"t".to_vec(),
        end: b"u".to_vec(),
    }
    .into();
    s.step("destroy [t, u)", destroy.clone());
    use crate::engine::{EngineIterator as _, Snapshot as _};
    let snap = s.engine.snapshot();
    let reader = MvccReader::new(&snap);
    for k in ["t1", "t2", "t3"] {
        assert_eq!(reader.get(k.as_bytes(), 100).unwrap(), None, "{k}");
    }
    for k in ["a", "u"] {
        assert_eq!(
            reader.get(k.as_bytes(), 100).unwrap(),
            Some(long.clone()),
            "{k}"
        );
    }
    // Nothing of the range is left in any column family.
    for cf in [Cf::Default, Cf::Lock, Cf::Write] {
        let mut it = snap
            .iter(
                cf,
                crate::engine::IterOptions {
                    lower: Some(crate::mvcc::encode_key(b"t")),
                    upper: Some(crate::mvcc::encode_key(b"u")),
                    prefix_seek: false,
                },
            )
            .unwrap();
        assert!(!it.seek_to_first().unwrap(), "{}", cf.name());
    }
    // A region takes the part of the range it holds; an unbounded range
    // is never destroyed.
    assert_eq!(
        destroy.restrict(b"t2", b""),
        Some(
            DestroyRange {
                start: b"t2".to_vec(),
                end: b"u".to_vec()
            }
            .into()
        )
    );
    assert!(destroy.restrict(b"u", b"").is_none());
    let unbounded: Command = DestroyRange {
        start: b"t".to_vec(),
        end: Vec::new(),
    }
    .into();
    assert!(unbounded.restrict(b"", b"").is_none());
    assert!(destroy.is_barrier() && destroy.latch_keys().is_empty());
}

/// Runs `cmd` as a one-phase commit at `commit_ts` through the log's form
/// and writes its effects; the answer.
fn one_pc_step(engine: &MemoryEngine, cmd: &Command, commit_ts: u64) -> Result<Response> {
    let effects = Effects::compute_one_pc(&engine.snapshot(), cmd, commit_ts).unwrap();
    let (batch, response) = Effects::from_bytes(&effects.to_bytes())
        .and_then(Effects::into_parts)
        .unwrap();
    engine.write(&batch, WriteOptions::default()).unwrap();
    response
}

#[test]
fn a_one_phase_commit_writes_commit_records_and_its_retry_writes_nothing() {
    let engine = MemoryEngine::new();
    let big = vec![7u8; SHORT_VALUE_MAX_LEN + 1];
    let mut p = prewrite(vec![put("a", b"1"), put("b", &big)], "a", 10);
    p.try_one_pc = true;
    let cmd: Command = p.clone().into();
    assert!(matches!(
        one_pc_step(&engine, &cmd, 15),
        Ok(Response::Committed { commit_ts: 15 })
    ));
    let snap = engine.snapshot();
    let reader = MvccReader::new(&snap);
    assert_eq!(reader.load_lock(b"a").unwrap(), None, "no lock is left");
    assert_eq!(reader.get(b"a", 14).unwrap(), None, "invisible below 15");
    assert_eq!(reader.get(b"a", 15).unwrap(), Some(b"1".to_vec()));
    assert_eq!(reader.get(b"b", 15).unwrap(), Some(big.clone()));
    // The answer was lost and the prewrite comes again: it finds its own
    // commit and writes nothing (the client's second phase finds it too).
    assert!(matches!(one_pc_step(&engine, &cmd, 20), Ok(Response::Done)));
    let commit: Command = Commit {
        keys: keys(&["a", "b"]),
        start_ts: 10,
        commit_ts: 21,
    }
    .into();
    assert!(matches!(
        one_pc_step(&engine, &commit, 0),
        Ok(Response::Done)
    ));
    assert_eq!(
        MvccReader::new(&engine.snapshot()).get(b"a", 30).unwrap(),
        Some(b"1".to_vec())
    );

    // A later transaction that started below 15 conflicts as with a
    // two-phase commit.
    let late: Command = prewrite(vec![put("a", b"2")], "a", 12).into();
    assert!(matches!(
        one_pc_step(&engine, &late, 16),
        Err(Error::WriteConflict { .. })
    ));
}

#[test]
fn a_one_phase_commit_replaces_pessimistic_locks_and_a_prewritten_key_falls_back() {
    let engine = MemoryEngine::new();
    let lock: Command = AcquirePessimisticLock {
        keys: keys(&["k"]),
        primary: b"k".to_vec(),
        start_ts: 40,
        for_update_ts: 41,
        lock_ttl: 3000,
        wait_ms: 0,
    }
    .into();
    assert!(matches!(one_pc_step(&engine, &lock, 0), Ok(Response::Done)));
    let mut p = prewrite(vec![put("k", b"v")], "k", 40);
    p.pessimistic = vec![true];
    p.for_update_ts = 41;
    p.try_one_pc = true;
    let cmd: Command = p.into();
    assert!(matches!(
        one_pc_step(&engine, &cmd, 42),
        Ok(Response::Committed { commit_ts: 42 })
    ));
    let snap = engine.snapshot();
    assert_eq!(MvccReader::new(&snap).load_lock(b"k").unwrap(), None);
    assert_eq!(
        MvccReader::new(&snap).get(b"k", 42).unwrap(),
        Some(b"v".to_vec())
    );
    // Retried after the pessimistic lock became a commit: no
    // TxnLockNotFound, nothing written.
    assert!(matches!(one_pc_step(&engine, &cmd, 50), Ok(Response::Done)));

    // A key this transaction prewrote already (an earlier try fell back):
    // the whole command prewrites as usual.
    let plain: Command = prewrite(vec![put("x", b"1")], "x", 60).into();
    assert!(matches!(
        one_pc_step(&engine, &plain, 0),
        Ok(Response::Done)
    ));
    let mut both = prewrite(vec![put("x", b"1"), put("y", b"2")], "x", 60);
    both.try_one_pc = true;
    assert!(matches!(
        one_pc_step(&engine, &both.into(), 61),
        Ok(Response::Done)
    ));
    let snap = engine.snapshot();
    let reader = MvccReader::new(&snap);
    assert!(reader.load_lock(b"y").unwrap().is_some(), "y is prewritten");
    assert_eq!(reader.get_committed(b"x", 100).unwrap(), None);
}

#[test]
fn only_a_prewrite_held_whole_by_one_region_may_commit_in_one_phase() {
    let mut p = prewrite(vec![put("a", b"1"), put("z", b"3")], "a", 10);
    p.try_one_pc = true;
    let cmd: Command = p.into();
    let one_pc = |c: Option<Command>| match c.and_then(|c| c.kind) {
        Some(command::Kind::Prewrite(p)) => p.try_one_pc,
        other => panic!("a prewrite expected, got {other:?}"),
    };
    assert!(one_pc(cmd.restrict(b"", b"")), "one region holds both keys");
    assert!(!one_pc(cmd.restrict(b"", b"m")), "the left part of two");
    assert!(!one_pc(cmd.restrict(b"m", b"")), "the right part of two");
}
