//! The timestamp oracle: strictly increasing `physical_ms << 18 | logical`
//! timestamps. It persists a high-water mark one window ahead of the
//! timestamps it hands out, so after a restart it starts above anything it
//! may have issued, even if the clock went backwards.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::{Cf, Engine, WriteBatch, WriteOptions};
use crate::error::{Error, Result};
use crate::mvcc::{TS_LOGICAL_BITS, compose_ts};

/// Where the high-water mark lives (`raft` CF, outside every region's keys).
pub const LIMIT_KEY: &[u8] = b"\x00tso/limit";

/// Anything that hands out strictly increasing, unique timestamps.
pub trait TimestampSource: Send + Sync {
    /// Reserves `n` consecutive timestamps and returns the last.
    fn get_batch(&self, n: u32) -> Result<u64>;
    /// One new timestamp.
    fn get_ts(&self) -> Result<u64> {
        self.get_batch(1)
    }
}

impl<E: Engine> TimestampSource for Tso<E> {
    fn get_batch(&self, n: u32) -> Result<u64> {
        Tso::get_batch(self, n)
    }
}
const MAX_LOGICAL: u64 = (1 << TS_LOGICAL_BITS) - 1;

/// A source of wall-clock milliseconds (replaceable in tests).
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct State {
    physical: u64,
    /// The monotonic clock's reading when `physical` last moved.
    advanced_at: u64,
    logical: u64,
    /// Physical time up to which timestamps may be issued without persisting.
    limit: u64,
}

/// A timestamp oracle backed by an engine.
pub struct Tso<E: Engine> {
    engine: Arc<E>,
    state: Mutex<State>,
    window_ms: u64,
    clock: Clock,
    /// Milliseconds from a fixed point, never stepped.
    monotonic: Clock,
}

impl<E: Engine> Tso<E> {
    /// Opens the oracle with the wall clock and a 3-second window.
    pub fn open(engine: Arc<E>) -> Result<Self> {
        let origin = std::time::Instant::now();
        let monotonic: Clock = Box::new(move || origin.elapsed().as_millis() as u64);
        Self::with_clocks(engine, 3000, Box::new(wall_clock_ms), monotonic)
    }

    /// Opens the oracle with a given clock and persistence window (and a
    /// monotonic clock that stands still: timestamps follow `clock` alone).
    pub fn with_clock(engine: Arc<E>, window_ms: u64, clock: Clock) -> Result<Self> {
        Self::with_clocks(engine, window_ms, clock, Box::new(|| 0))
    }

    /// Opens the oracle on a wall `clock` and a `monotonic` one: while the
    /// wall clock reads behind the timestamps issued (it was stepped back,
    /// or ahead and then corrected, or it lags the limit an earlier run
    /// left), their physical part moves on at the monotonic pace rather
    /// than stand still until the wall clock catches up — lock lifetimes,
    /// measured in timestamps, must keep running out.
    pub fn with_clocks(
        engine: Arc<E>,
        window_ms: u64,
        clock: Clock,
        monotonic: Clock,
    ) -> Result<Self> {
        let limit = match engine.get(Cf::Raft, LIMIT_KEY)? {
            Some(b) => {
                u64::from_be_bytes(b.as_slice().try_into().map_err(|_| Error::Corruption {
                    what: "timestamp oracle limit",
                    detail: format!("{} bytes instead of 8", b.len()),
                })?)
            }
            None => 0,
        };
        // Everything below the persisted limit may have been issued.
        let physical = clock().max(limit);
        let tso = Tso {
            engine,
            state: Mutex::new(State {
                physical,
                advanced_at: monotonic(),
                logical: 0,
                limit,
            }),
            window_ms,
            clock,
            monotonic,
        };
        {
            let mut st = tso.state.lock().unwrap_or_else(|e| e.into_inner());
            st.limit = 0;
            tso.persist_if_needed(&mut st)?;
        }
        Ok(tso)
    }

    /// One new timestamp.
    pub fn get_ts(&self) -> Result<u64> {
        self.get_batch(1)
    }

    /// Reserves `n` consecutive timestamps and returns the last; the batch is
    /// `last - n + 1 ..= last`.
    pub fn get_batch(&self, n: u32) -> Result<u64> {
        let n = u64::from(n.max(1));
        if n > MAX_LOGICAL {
            return Err(Error::Tso(format!(
                "a batch of {n} timestamps is too large"
            )));
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let at = (self.monotonic)();
        let now = (self.clock)().max(st.physical + at.saturating_sub(st.advanced_at));
        if now > st.physical {
            st.physical = now;
            st.advanced_at = at;
            st.logical = 0;
        }
        if st.logical + n > MAX_LOGICAL {
            st.physical += 1;
            st.logical = 0;
        }
        self.persist_if_needed(&mut st)?;
        st.logical += n;
        Ok(compose_ts(st.physical, st.logical))
    }

    /// Moves the persisted limit a window ahead when `physical` reaches it.
    fn persist_if_needed(&self, st: &mut State) -> Result<()> {
        if st.physical < st.limit {
            return Ok(());
        }
        let limit = st.physical + self.window_ms;
        let mut batch = WriteBatch::new();
        batch.put(Cf::Raft, LIMIT_KEY.to_vec(), limit.to_be_bytes().to_vec());
        self.engine.write(&batch, WriteOptions { sync: true })?;
        st.limit = limit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::mvcc::physical_ms;

    fn manual_clock(start: u64) -> (Arc<AtomicU64>, Clock) {
        let t = Arc::new(AtomicU64::new(start));
        let c = Arc::clone(&t);
        (t, Box::new(move || c.load(Ordering::SeqCst)))
    }

    #[test]
    fn strictly_increasing_even_when_the_clock_stalls_or_goes_back() {
        let engine = Arc::new(MemoryEngine::new());
        let (clock, f) = manual_clock(1000);
        let tso = Tso::with_clock(engine, 100, f).unwrap();
        let a = tso.get_ts().unwrap();
        let b = tso.get_ts().unwrap();
        clock.store(500, Ordering::SeqCst);
        let c = tso.get_ts().unwrap();
        assert!(a < b && b < c);
        assert_eq!(physical_ms(c), 1000);
        let last = tso.get_batch(10).unwrap();
        assert_eq!(last, c + 10);
    }

    #[test]
    fn timestamps_keep_pace_while_the_wall_clock_is_behind() {
        let engine = Arc::new(MemoryEngine::new());
        let (wall, w) = manual_clock(10_000);
        let (mono, m) = manual_clock(0);
        let tso = Tso::with_clocks(engine, 100, w, m).unwrap();
        assert_eq!(physical_ms(tso.get_ts().unwrap()), 10_000);
        // Stepped ahead 500 s, then corrected while 2 s pass: the physical
        // part goes on at the monotonic pace, not from the wall clock.
        wall.store(510_000, Ordering::SeqCst);
        mono.store(1_000, Ordering::SeqCst);
        assert_eq!(physical_ms(tso.get_ts().unwrap()), 510_000);
        wall.store(11_000, Ordering::SeqCst);
        mono.store(3_000, Ordering::SeqCst);
        assert_eq!(physical_ms(tso.get_ts().unwrap()), 512_000);
        mono.store(3_500, Ordering::SeqCst);
        assert_eq!(physical_ms(tso.get_ts().unwrap()), 512_500);
        // Once the wall clock is ahead again, it is followed.
        wall.store(600_000, Ordering::SeqCst);
        assert_eq!(physical_ms(tso.get_ts().unwrap()), 600_000);
    }

    #[test]
    fn logical_overflow_moves_to_the_next_millisecond() {
        let engine = Arc::new(MemoryEngine::new());
        let (_clock, f) = manual_clock(7);
        let tso = Tso::with_clock(engine, 100, f).unwrap();
        let first = tso.get_batch(MAX_LOGICAL as u32 - 1).unwrap();
        let next = tso.get_batch(5).unwrap();
        assert!(next > first);
        assert_eq!(physical_ms(next), 8);
    }

    #[test]
    fn restart_never_goes_back() {
        let engine = Arc::new(MemoryEngine::new());
        let (_c1, f) = manual_clock(10_000);
        let before = Tso::with_clock(Arc::clone(&engine), 3000, f)
            .unwrap()
            .get_ts()
            .unwrap();
        // Restart with the clock far behind: timestamps start above the persisted window.
        let (_c2, f) = manual_clock(5);
        let after = Tso::with_clock(engine, 3000, f).unwrap().get_ts().unwrap();
        assert!(after > before);
        assert!(physical_ms(after) >= 13_000);
    }
}
