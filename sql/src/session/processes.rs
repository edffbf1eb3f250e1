//! The instance's live sessions and its status counters: what
//! `SHOW [FULL] PROCESSLIST` and `SHOW STATUS` report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::interrupt::Interrupt;
use crate::value::Value;

/// One connection as the process list shows it.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    pub user: String,
    pub host: String,
    pub db: Option<String>,
    /// The statement running, if any.
    pub info: Option<String>,
    /// When the current command (statement, or idling) began.
    pub since: Instant,
    /// What stops the session's statements (`KILL`).
    pub interrupt: Arc<Interrupt>,
}

/// Sessions by connection id, and counters since the instance started.
#[derive(Debug)]
pub(crate) struct Processes {
    live: Mutex<BTreeMap<u32, Process>>,
    started: Instant,
    connections: AtomicU64,
    questions: AtomicU64,
    /// Executions of prepared statements that reused their kept plan.
    plans_reused: AtomicU64,
}

impl Default for Processes {
    fn default() -> Self {
        Processes {
            live: Mutex::default(),
            started: Instant::now(),
            connections: AtomicU64::new(0),
            questions: AtomicU64::new(0),
            plans_reused: AtomicU64::new(0),
        }
    }
}

impl Processes {
    pub fn connect(&self, id: u32, user: &str, host: &str, interrupt: Arc<Interrupt>) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Process {
                user: user.to_string(),
                host: host.to_string(),
                db: None,
                info: None,
                since: Instant::now(),
                interrupt,
            },
        );
    }

    /// The user and stop signal of session `id`, if it is live.
    pub fn target(&self, id: u32) -> Option<(String, Arc<Interrupt>)> {
        self.lock()
            .get(&id)
            .map(|p| (p.user.clone(), Arc::clone(&p.interrupt)))
    }

    /// Every live session's stop signal (shutdown stops them all).
    pub fn interrupts(&self) -> Vec<Arc<Interrupt>> {
        self.lock()
            .values()
            .map(|p| Arc::clone(&p.interrupt))
            .collect()
    }

    pub fn disconnect(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// Session `id` starts running `sql` (in database `db`).
    pub fn begin(&self, id: u32, db: Option<&str>, sql: &str) {
        self.questions.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = self.lock().get_mut(&id) {
            p.db = db.map(str::to_string);
            p.info = Some(sql.to_string());
            p.since = Instant::now();
        }
    }

    /// Session `id` is idle again.
    /// A prepared statement ran on the plan it kept.
    pub fn plan_reused(&self) {
        self.plans_reused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn end(&self, id: u32, db: Option<&str>) {
        if let Some(p) = self.lock().get_mut(&id) {
            p.db = db.map(str::to_string);
            p.info = None;
            p.since = Instant::now();
        }
    }

    /// `SHOW [FULL] PROCESSLIST` rows: Id, User, Host, db, Command, Time,
    /// State, Info (the first 100 characters unless `full`).
    pub fn list(&self, full: bool) -> Vec<Vec<Value>> {
        self.lock()
            .iter()
            .map(|(id, p)| {
                let info = p.info.as_ref().map_or(Value::Null, |s| {
                    Value::Str(if full {
                        s.clone()
                    } else {
                        s.chars().take(100).collect()
                    })
                });
                let running = p.info.is_some();
                vec![
                    Value::UInt(u64::from(*id)),
                    Value::Str(p.user.clone()),
                    Value::Str(p.host.clone()),
                    p.db.clone().map_or(Value::Null, Value::Str),
                    Value::Str(if running { "Query" } else { "Sleep" }.into()),
                    Value::UInt(p.since.elapsed().as_secs()),
                    Value::Str(if running { "executing" } else { "" }.into()),
                    info,
                ]
            })
            .collect()
    }

    /// `SHOW STATUS` counters, sorted by name.
    pub fn status(&self) -> Vec<(&'static str, String)> {
        let live = self.lock();
        let running = live.values().filter(|p| p.info.is_some()).count();
        let questions = self.questions.load(Ordering::Relaxed).to_string();
        vec![
            (
                "Connections",
                self.connections.load(Ordering::Relaxed).to_string(),
            ),
            (
                "Duet_prepared_plans_reused",
                self.plans_reused.load(Ordering::Relaxed).to_string(),
            ),
            ("Queries", questions.clone()),
            ("Questions", questions),
            ("Slow_queries", "0".into()),
            ("Threads_connected", live.len().to_string()),
            ("Threads_running", running.to_string()),
            ("Uptime", self.started.elapsed().as_secs().to_string()),
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Process>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_show_what_they_run_until_they_leave() {
        let p = Processes::default();
        p.connect(7, "root", "127.0.0.1:5000", Interrupt::new());
        p.begin(7, Some("test"), &format!("SELECT {}", "x".repeat(200)));
        let rows = p.list(false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][4], Value::Str("Query".into()));
        assert!(matches!(&rows[0][7], Value::Str(s) if s.chars().count() == 100));
        assert!(matches!(&p.list(true)[0][7], Value::Str(s) if s.len() == 207));
        p.end(7, Some("test"));
        assert_eq!(p.list(false)[0][4], Value::Str("Sleep".into()));
        let status: BTreeMap<_, _> = p.status().into_iter().collect();
        assert_eq!(status["Questions"], "1");
        assert_eq!(status["Threads_connected"], "1");
        p.disconnect(7);
        assert!(p.list(false).is_empty());
    }
}
