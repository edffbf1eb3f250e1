//! A session's stop signal: what ends its running statement early, and why.
//! `KILL QUERY` and a client that went away stop the statement (1317);
//! `max_execution_time` or the `MAX_EXECUTION_TIME` hint stops it at its
//! deadline (3024); `KILL CONNECTION` and the end of a shutdown's grace stop
//! it and every later one, and tell the connection to close.
//!
//! The running statement looks at the signal where it waits or loops: the
//! query engine between batches and while it waits for one, row-store
//! scans between chunks, `SLEEP` and lock waits as they wait. Code on the
//! statement's own thread reaches the signal, with the statement's other
//! bounds (its memory quota, where it spills), through [`current`]; the
//! query engine's tasks carry them in the statement's scope.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// Nothing stops the statement.
const RUNNING: u8 = 0;
/// `KILL QUERY`, or the client left: this statement stops.
const QUERY_KILLED: u8 = 1;
/// `KILL CONNECTION` or shutdown: this statement and the connection stop.
const CONNECTION_KILLED: u8 = 2;

/// One session's stop signal, shared with whoever may stop it.
#[derive(Debug, Default)]
pub struct Interrupt {
    state: AtomicU8,
    /// When the running statement must stop (its execution time limit).
    deadline: Mutex<Option<Instant>>,
    /// Wakes the statement's waits, and the connection, on a kill.
    notify: Notify,
}

impl Interrupt {
    pub fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt::default())
    }

    /// Stops the running statement, if any (`KILL QUERY`; the client went
    /// away). A kill of an idle session is forgotten when its next
    /// statement starts.
    pub fn kill_query(&self) {
        let _ =
            self.state
                .compare_exchange(RUNNING, QUERY_KILLED, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_waiters();
    }

    /// Stops the running statement and every later one, and asks the
    /// connection to close (`KILL CONNECTION`, shutdown).
    pub fn kill_connection(&self) {
        self.state.store(CONNECTION_KILLED, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether the connection was killed.
    pub fn connection_killed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTION_KILLED
    }

    /// Resolves once the connection is killed.
    pub async fn connection_kill(&self) {
        loop {
            let notified = self.notify.notified();
            if self.connection_killed() {
                return;
            }
            notified.await;
        }
    }

    /// A statement starts: a query kill of before is forgotten, and the
    /// statement must stop by `deadline`, if given.
    pub(crate) fn start(&self, deadline: Option<Instant>) {
        let _ =
            self.state
                .compare_exchange(QUERY_KILLED, RUNNING, Ordering::AcqRel, Ordering::Acquire);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
    }

    /// The running statement must stop by `at`.
    pub(crate) fn set_deadline(&self, at: Instant) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the running statement must stop, if it must.
    pub fn check(&self) -> Result<()> {
        match self.state.load(Ordering::Acquire) {
            RUNNING => {}
            _ => return Err(Error::Interrupted),
        }
        match self.deadline() {
            Some(at) if Instant::now() >= at => Err(Error::ExecutionTimeExceeded),
            _ => Ok(()),
        }
    }

    /// Resolves, with the reason, once the running statement must stop.
    pub async fn stopped(&self) -> Error {
        loop {
            let notified = self.notify.notified();
            if let Err(e) = self.check() {
                return e;
            }
            match self.deadline() {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Sleeps for `duration`, or until the statement must stop: whether it
    /// slept the whole time. For the statement's own thread (`SLEEP`).
    pub fn sleep(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        loop {
            if self.check().is_err() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(10)));
        }
    }
}

/// What bounds the statement a thread runs: its stop signal, the memory
/// its query may take (`duet_mem_quota_query`), where its operators spill.
#[derive(Clone, Debug)]
pub(crate) struct Bounds {
    pub interrupt: Arc<Interrupt>,
    pub mem_quota: usize,
    pub spill: Option<Arc<datafusion::execution::disk_manager::DiskManager>>,
}

thread_local! {
    /// The bounds of the statement this thread runs, if any.
    static CURRENT: RefCell<Option<Bounds>> = const { RefCell::new(None) };
}

/// The bounds of the statement the calling thread runs, while the guard
/// lives.
pub(crate) struct Running(Option<Bounds>);

impl Running {
    pub(crate) fn enter(bounds: Bounds) -> Running {
        Running(CURRENT.with(|c| c.replace(Some(bounds))))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The bounds of the statement the calling thread runs, if any.
pub(crate) fn current() -> Option<Bounds> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether the statement the calling thread runs must stop (a thread that
/// runs none never must).
pub(crate) fn check_current() -> Result<()> {
    CURRENT.with(|c| c.borrow().as_ref().map_or(Ok(()), |b| b.interrupt.check()))
}

/// `SLEEP(seconds)`: waits, a row at a time, and answers 0; 1 if the
/// statement was stopped meanwhile (which then ends with its error). For
/// tests and tools; bound to one statement's signal.
#[derive(Debug)]
pub(crate) struct Sleep {
    interrupt: Arc<Interrupt>,
    signature: datafusion::logical_expr::Signature,
}

impl Sleep {
    pub(crate) fn udf(interrupt: Arc<Interrupt>) -> datafusion::logical_expr::ScalarUDF {
        datafusion::logical_expr::ScalarUDF::from(Sleep {
            interrupt,
            signature: datafusion::logical_expr::Signature::any(
                1,
                datafusion::logical_expr::Volatility::Volatile,
            ),
        })
    }
}

impl PartialEq for Sleep {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.interrupt, &other.interrupt)
    }
}

impl Eq for Sleep {}

impl std::hash::Hash for Sleep {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.interrupt).hash(state);
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for Sleep {
    fn name(&self) -> &str {
        "sleep"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Int64)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, Float64Array, Int64Array};
        let arrays = datafusion::logical_expr::ColumnarValue::values_to_arrays(&args.args)?;
        let seconds = datafusion::arrow::compute::cast(
            &arrays[0],
            &datafusion::arrow::datatypes::DataType::Float64,
        )?;
        let seconds = seconds
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("sleep".into()))?;
        let slept: Vec<Option<i64>> = (0..seconds.len())
            .map(|i| {
                if seconds.is_null(i) {
                    return None;
                }
                let d =
                    Duration::try_from_secs_f64(seconds.value(i).max(0.0)).unwrap_or(Duration::MAX);
                Some(if self.interrupt.sleep(d) { 0 } else { 1 })
            })
            .collect();
        Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(
            Int64Array::from(slept),
        )))
    }
}

/// `duet_alive()`: true while the statement may go on, its stop error once
/// it must not. Bound to one statement's signal; the query engine's joins
/// evaluate it with each chunk of pairs they form (see `query::execute`).
#[derive(Debug)]
pub(crate) struct Alive {
    interrupt: Arc<Interrupt>,
    signature: datafusion::logical_expr::Signature,
}

impl Alive {
    pub(crate) fn udf(interrupt: Arc<Interrupt>) -> Arc<datafusion::logical_expr::ScalarUDF> {
        Arc::new(datafusion::logical_expr::ScalarUDF::from(Alive {
            interrupt,
            signature: datafusion::logical_expr::Signature::nullary(
                datafusion::logical_expr::Volatility::Volatile,
            ),
        }))
    }
}

impl PartialEq for Alive {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.interrupt, &other.interrupt)
    }
}

impl Eq for Alive {}

impl std::hash::Hash for Alive {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.interrupt).hash(state);
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for Alive {
    fn name(&self) -> &str {
        "duet_alive"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        _: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        self.interrupt
            .check()
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            datafusion::scalar::ScalarValue::Boolean(Some(true)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_kill_stops_one_statement_and_a_connection_kill_every_one() {
        let i = Interrupt::new();
        i.start(None);
        assert!(i.check().is_ok());
        i.kill_query();
        assert!(matches!(i.check(), Err(Error::Interrupted)));
        i.start(None);
        assert!(i.check().is_ok(), "the next statement runs");
        i.kill_query();
        i.kill_connection();
        i.start(None);
        assert!(matches!(i.check(), Err(Error::Interrupted)));
        assert!(i.connection_killed());
    }

    #[test]
    fn a_deadline_passed_stops_the_statement_and_the_next_has_its_own() {
        let i = Interrupt::new();
        i.start(Some(Instant::now()));
        assert!(matches!(i.check(), Err(Error::ExecutionTimeExceeded)));
        i.start(None);
        assert!(i.check().is_ok());
    }

    #[test]
    fn the_current_signal_is_the_innermost_entered() {
        let bounds = |i: &Arc<Interrupt>| Bounds {
            interrupt: Arc::clone(i),
            mem_quota: 1,
            spill: None,
        };
        assert!(current().is_none());
        let outer = Interrupt::new();
        let inner = Interrupt::new();
        let _a = Running::enter(bounds(&outer));
        {
            let _b = Running::enter(bounds(&inner));
            inner.kill_query();
            assert!(check_current().is_err());
        }
        assert!(check_current().is_ok());
        assert!(Arc::ptr_eq(&current().unwrap().interrupt, &outer));
    }

    #[test]
    fn a_sleep_ends_early_when_killed() {
        let i = Interrupt::new();
        i.start(None);
        i.kill_query();
        assert!(!i.sleep(Duration::from_secs(60)));
        i.start(None);
        assert!(i.sleep(Duration::from_millis(1)));
    }
}
