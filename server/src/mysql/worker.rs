//! The thread a connection's statements run on. The network runtime only
//! reads and writes sockets; each logged-in connection gets a thread of its
//! own (MySQL's thread per connection), with a stack deep enough for the
//! deepest statement Duet accepts. The thread owns the SQL session, runs
//! one command at a time, and enters the query engine's runtime, where the
//! parts of a query the engine spreads out run. A long analytic query
//! therefore holds up neither the network (new connections are greeted,
//! other sessions' packets are read) nor another session's point reads.
//!
//! Result rows travel to the connection in batches through a bounded
//! channel: a result streams to the client as it is made, and a client that
//! reads slowly slows its own statement instead of filling the server's
//! memory.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use duet_sql::{Column, Interrupt, RowSink, Session, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

/// Batches of rows on their way to the connection, at most.
const QUEUED_BATCHES: usize = 4;

/// What the statement thread sends the connection while a command runs.
pub(super) enum Event {
    /// A result's columns, before its rows.
    Columns(Vec<Column>),
    /// Some of its rows, in order.
    Rows(Vec<Vec<Value>>),
}

/// A command for the session.
type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A connection's statement thread.
pub(super) struct Worker {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    /// The rows of the running command.
    pub events: mpsc::Receiver<Event>,
    /// What stops the running statement.
    pub interrupt: Arc<Interrupt>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread of connection `id`, which owns `session` from now
    /// on and streams its query results to this worker's events.
    pub fn start(mut session: Session, id: u32) -> std::io::Result<Worker> {
        let (events_tx, events) = mpsc::channel(QUEUED_BATCHES);
        let interrupt = session.interrupt();
        session.set_sink(Box::new(Channel {
            events: events_tx,
            interrupt: Arc::clone(&interrupt),
        }));
        let runtime = session.database().runtime();
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("duet-conn-{id}"))
            .stack_size(duet_sql::STATEMENT_STACK_SIZE)
            .spawn(move || {
                let _runtime = runtime.enter();
                while let Ok(job) = inbox.recv() {
                    // A panic is a bug: the connection ends (its open
                    // transaction rolls back as the session drops), the
                    // server goes on.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut session))).is_err() {
                        error!(conn = id, "a statement panicked; closing its connection");
                        break;
                    }
                }
            })?;
        Ok(Worker {
            jobs: Some(jobs),
            events,
            interrupt,
            thread: Some(thread),
        })
    }

    /// Runs `f` on the session's thread; its answer comes on the receiver
    /// (which closes without one if the thread is gone).
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |session| {
            let _ = tx.send(f(session));
        });
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
        rx
    }
}

impl Drop for Worker {
    /// The thread ends once it has no more commands: its session drops
    /// there (rolling back an open transaction). It is not waited for.
    fn drop(&mut self) {
        self.jobs = None;
        drop(self.thread.take());
    }
}

/// The session's sink: rows go to the connection through the channel.
struct Channel {
    events: mpsc::Sender<Event>,
    interrupt: Arc<Interrupt>,
}

impl Channel {
    fn send(&mut self, event: Event) -> duet_sql::Result<()> {
        // The statement stops if it must, or if the connection is gone.
        self.interrupt.check()?;
        self.events
            .blocking_send(event)
            .map_err(|_| duet_sql::Error::Interrupted)
    }
}

impl RowSink for Channel {
    fn columns(&mut self, columns: &[Column]) -> duet_sql::Result<()> {
        self.send(Event::Columns(columns.to_vec()))
    }

    fn rows(&mut self, rows: Vec<Vec<Value>>) -> duet_sql::Result<()> {
        self.send(Event::Rows(rows))
    }
}
