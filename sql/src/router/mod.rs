//! The router: which engine serves a table access and by which path, as
//! pure functions of what the statement says (the session's
//! `duet_isolation_read_engines`, the `READ_FROM_STORAGE` hints) and of the
//! estimates the statistics give. It imports no plan and no storage; the
//! table providers ask it and carry its answer into the plan.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use datafusion::sql::sqlparser::ast::{self, Query, SetExpr, TableFactor};

use crate::error::{Error, Result, Warning};

/// An engine that can serve a table access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Engine {
    Row,
    Columnar,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Row => "row",
            Engine::Columnar => "columnar",
        })
    }
}

/// The router's decision for one table access, made as the access is
/// planned physically: one engine, or either, decided by the costs of the
/// access paths the conditions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Only(Engine),
    Cost,
}

/// How a table access reads the row store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Path {
    /// Every row of the table.
    FullScan,
    /// Rows whose integer primary key is in the ranges described.
    KeyRanges(String),
    /// Rows found through an index, for `values` lookup values (each
    /// limited to `range` of the next index column, when given; with no
    /// values, the range of the index's first column).
    IndexLookup {
        index: String,
        values: usize,
        range: Option<String>,
    },
}

/// What the engines may serve for one statement.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// The session's allowed engines (`duet_isolation_read_engines`).
    pub allowed: Vec<Engine>,
    /// `READ_FROM_STORAGE` hints: lower-case table name → engine.
    pub hints: HashMap<String, Engine>,
    /// Hints that could not be followed, for `SHOW WARNINGS`.
    pub warnings: Mutex<Vec<Warning>>,
}

impl Routing {
    /// `engines` is the variable's value (`'row'`, `'columnar'`, `'row,columnar'`).
    pub fn new(engines: &str, query: &Query) -> Routing {
        let allowed = engines
            .split(',')
            .filter_map(|e| match e.trim().to_ascii_lowercase().as_str() {
                "row" => Some(Engine::Row),
                "columnar" => Some(Engine::Columnar),
                _ => None,
            })
            .collect();
        let mut routing = Routing {
            allowed,
            ..Routing::default()
        };
        collect_hints(query, &mut routing.hints);
        routing
    }

    /// The engine that serves `table` (`database.table`, name as declared);
    /// `columnar_available` says whether its columnar replica can serve it.
    pub fn engine_for(
        &self,
        database: &str,
        table: &str,
        columnar_available: bool,
    ) -> Result<Choice> {
        let available = |e: Engine| e == Engine::Row || columnar_available;
        let allowed: Vec<Engine> = self
            .allowed
            .iter()
            .copied()
            .filter(|e| available(*e))
            .collect();
        if let Some(hinted) = self.hints.get(&table.to_ascii_lowercase()) {
            if allowed.contains(hinted) {
                return Ok(Choice::Only(*hinted));
            }
            self.warn(format!(
                "No available path for table '{database}.{table}' with the store type {} of the \
                 hint READ_FROM_STORAGE; check the table's columnar replica and \
                 duet_isolation_read_engines",
                hinted.to_string().to_ascii_uppercase()
            ));
        }
        if allowed.len() > 1 {
            return Ok(Choice::Cost);
        }
        allowed.first().copied().map(Choice::Only).map_or_else(
            || {
                Err(Error::NoAccessPath {
                    table: format!("{database}.{table}"),
                    engines: self
                        .allowed
                        .iter()
                        .map(Engine::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                })
            },
            Ok,
        )
    }

    /// Whether the row store may serve `table` (as named in the query):
    /// the session allows it and no hint sends the table to columnar.
    pub fn row_may_serve(&self, table: &str) -> bool {
        self.allowed.contains(&Engine::Row)
            && self.hints.get(&table.to_ascii_lowercase()) != Some(&Engine::Columnar)
    }

    fn warn(&self, message: String) {
        let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        // Each access of a table asks again (a self-join, a kept plan).
        if warnings.iter().any(|w| w.message == message) {
            return;
        }
        warnings.push(Warning {
            level: "Warning",
            code: 1815,
            message,
        });
    }

    /// The warnings raised while planning.
    pub fn take_warnings(&self) -> Vec<Warning> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Reads `READ_FROM_STORAGE(COLUMNAR[t1, t2], ROW[t3])` from every SELECT
/// of `query`; an alias names the table it stands for.
fn collect_hints(query: &Query, hints: &mut HashMap<String, Engine>) {
    use std::ops::ControlFlow;
    struct Hints<'a>(&'a mut HashMap<String, Engine>);
    impl ast::Visitor for Hints<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = q.body.as_ref() {
                let mut aliases = HashMap::new();
                for t in &select.from {
                    for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation))
                    {
                        if let TableFactor::Table { name, alias, .. } = f {
                            let table = name
                                .0
                                .last()
                                .and_then(|p| p.as_ident())
                                .map(|i| i.value.to_ascii_lowercase())
                                .unwrap_or_default();
                            if let Some(a) = alias {
                                aliases.insert(a.name.value.to_ascii_lowercase(), table.clone());
                            }
                            aliases.insert(table.clone(), table);
                        }
                    }
                }
                for hint in &select.optimizer_hints {
                    for (engine, name) in parse_hint(&hint.text) {
                        let name = aliases.get(&name).cloned().unwrap_or(name);
                        self.0.insert(name, engine);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::Visit::visit(query, &mut Hints(hints));
}

/// The `(engine, table)` pairs of the `READ_FROM_STORAGE` hints in a hint
/// comment's text; other hints are ignored, as MySQL ignores unknown ones.
pub(crate) fn parse_hint(text: &str) -> Vec<(Engine, String)> {
    let mut out = Vec::new();
    let upper = text.to_ascii_uppercase();
    let mut rest = upper.as_str();
    let mut offset = 0;
    while let Some(at) = rest.find("READ_FROM_STORAGE") {
        let start = offset + at + "READ_FROM_STORAGE".len();
        let Some(open) = text[start..].find('(') else {
            break;
        };
        let body_start = start + open + 1;
        let Some(close) = find_close(&text[body_start..]) else {
            break;
        };
        let body = &text[body_start..body_start + close];
        // `COLUMNAR[t1, t2], ROW[t3]`
        for part in body.split(']') {
            let Some((engine, tables)) = part.split_once('[') else {
                continue;
            };
            let engine = match engine
                .trim_matches(|c: char| c == ',' || c.is_whitespace())
                .to_ascii_uppercase()
                .as_str()
            {
                "ROW" | "TIKV" => Engine::Row,
                "COLUMNAR" | "TIFLASH" => Engine::Columnar,
                _ => continue,
            };
            for t in tables.split(',') {
                let t = t.trim().trim_matches('`');
                // `db.t` names the table `t`.
                let t = t.rsplit('.').next().unwrap_or(t);
                if !t.is_empty() {
                    out.push((engine, t.to_ascii_lowercase()));
                }
            }
        }
        offset = body_start + close;
        rest = &upper[offset..];
    }
    out
}

/// The offset of the `)` that closes an already opened parenthesis.
fn find_close(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// How many sequential row reads one index lookup's row costs (an index
/// entry, then the row by key).
pub(crate) const INDEX_LOOKUP_COST: f64 = 3.0;

/// What one row costs the columnar replica's scan, in row-store row reads
/// (it scans whole tables some 10 to 40 times faster per row).
pub(crate) const COLUMNAR_ROW_COST: f64 = 0.1;

/// What a columnar read costs before its first row, in row-store row
/// reads: the wait for the learner to apply up to the read timestamp.
pub(crate) const COLUMNAR_START_COST: f64 = 1000.0;

/// The estimates behind an index lookup the filters allow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookupEstimate {
    /// The index is the clustered primary key: its rows cost no more than
    /// a scan's.
    pub clustered: bool,
    /// Rows the lookup should find, if the statistics say.
    pub expected: Option<f64>,
    /// The lookup is only a range open at one end.
    pub open_range_only: bool,
}

/// Whether to read through an index lookup: not when the statistics say it
/// would fetch so much of the table that one sequential scan costs less (a
/// clustered key prefix reads no more than a scan would), nor, without
/// statistics, for a range open at one end.
pub(crate) fn use_lookup(lookup: &LookupEstimate, table_rows: Option<f64>) -> bool {
    match (lookup.expected, table_rows) {
        (Some(e), Some(rows)) if !lookup.clustered && e * INDEX_LOOKUP_COST > rows => false,
        (None, _) => !lookup.open_range_only,
        _ => true,
    }
}

/// How the row store would read a table access.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowRead<'a> {
    /// Key ranges, holding this many rows if the statistics say.
    KeyRanges(Option<f64>),
    Lookup(&'a LookupEstimate),
    FullScan,
}

/// Where both engines may serve, whether the columnar replica is the
/// cheaper: the row store's key ranges (`key_rows`) and index lookups read
/// only what they need; the columnar replica reads a whole table far faster
/// per row, but waits for its learner first. Without statistics, rules: a
/// key range or lookup goes to the row store, a full scan to columnar.
pub(crate) fn columnar_is_cheaper(row_read: RowRead<'_>, table_rows: Option<f64>) -> bool {
    let row_cost = match row_read {
        RowRead::KeyRanges(rows) => rows,
        RowRead::Lookup(lookup) => lookup.expected.map(|e| {
            e * if lookup.clustered {
                1.0
            } else {
                INDEX_LOOKUP_COST
            }
        }),
        RowRead::FullScan => table_rows.or(Some(f64::INFINITY)),
    };
    let columnar_cost = table_rows.map(|r| COLUMNAR_START_COST + r * COLUMNAR_ROW_COST);
    match (row_cost, columnar_cost) {
        (Some(row), Some(columnar)) => columnar < row,
        (row, _) => row == Some(f64::INFINITY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(clustered: bool, expected: Option<f64>) -> LookupEstimate {
        LookupEstimate {
            clustered,
            expected,
            open_range_only: false,
        }
    }

    #[test]
    fn lookups_that_read_most_of_a_table_give_way_to_a_scan() {
        assert!(use_lookup(&lookup(false, Some(10.0)), Some(1000.0)));
        assert!(!use_lookup(&lookup(false, Some(500.0)), Some(1000.0)));
        // A clustered prefix never reads more than the scan would.
        assert!(use_lookup(&lookup(true, Some(900.0)), Some(1000.0)));
        let open = LookupEstimate {
            open_range_only: true,
            ..lookup(false, None)
        };
        assert!(!use_lookup(&open, None));
        assert!(use_lookup(&lookup(false, None), None));
    }

    #[test]
    fn columnar_serves_large_scans_and_row_store_narrow_reads() {
        // Statistics: a full scan of a large table goes to columnar, a key
        // range of a few rows to the row store.
        let narrow = lookup(false, Some(5.0));
        assert!(columnar_is_cheaper(RowRead::FullScan, Some(1e6)));
        assert!(!columnar_is_cheaper(
            RowRead::KeyRanges(Some(10.0)),
            Some(1e6)
        ));
        assert!(!columnar_is_cheaper(RowRead::Lookup(&narrow), Some(1e6)));
        // A small table is not worth the learner's wait.
        assert!(!columnar_is_cheaper(RowRead::FullScan, Some(100.0)));
        // Without statistics: a full scan to columnar, a key range or a
        // lookup to the row store.
        assert!(columnar_is_cheaper(RowRead::FullScan, None));
        assert!(!columnar_is_cheaper(RowRead::KeyRanges(None), None));
        assert!(!columnar_is_cheaper(
            RowRead::Lookup(&lookup(false, None)),
            None
        ));
    }

    #[test]
    fn read_from_storage_hints_name_engines_per_table() {
        assert_eq!(
            parse_hint(" READ_FROM_STORAGE(COLUMNAR[t1, db.t2], ROW[`t3`]) "),
            vec![
                (Engine::Columnar, "t1".to_string()),
                (Engine::Columnar, "t2".to_string()),
                (Engine::Row, "t3".to_string()),
            ]
        );
        assert_eq!(
            parse_hint("MAX_EXECUTION_TIME(10) read_from_storage(row[a])"),
            vec![(Engine::Row, "a".to_string())]
        );
        assert!(parse_hint("READ_FROM_STORAGE(").is_empty());
        assert!(parse_hint("READ_FROM_STORAGE(DISK[t])").is_empty());
    }

    #[test]
    fn the_row_store_serves_unless_excluded_and_hints_fall_back_with_a_warning() {
        let q = |sql: &str| {
            let mut s =
                datafusion::sql::sqlparser::parser::Parser::parse_sql(&crate::dialect::MySql, sql)
                    .unwrap();
            match s.pop().unwrap() {
                ast::Statement::Query(q) => *q,
                _ => unreachable!(),
            }
        };
        let plain = Routing::new("row,columnar", &q("SELECT * FROM t"));
        assert_eq!(
            plain.engine_for("d", "t", false).unwrap(),
            Choice::Only(Engine::Row)
        );
        assert_eq!(plain.engine_for("d", "t", true).unwrap(), Choice::Cost);
        assert!(plain.take_warnings().is_empty());

        let hinted = Routing::new(
            "row,columnar",
            &q("SELECT /*+ READ_FROM_STORAGE(COLUMNAR[x]) */ * FROM t AS x"),
        );
        assert_eq!(
            hinted.engine_for("d", "t", true).unwrap(),
            Choice::Only(Engine::Columnar)
        );
        assert_eq!(
            hinted.engine_for("d", "t", false).unwrap(),
            Choice::Only(Engine::Row)
        );
        assert_eq!(hinted.take_warnings().len(), 1);

        let columnar_only = Routing::new("columnar", &q("SELECT * FROM t"));
        let e = columnar_only.engine_for("d", "t", false).unwrap_err();
        assert_eq!(e.code(), 1815);
        assert_eq!(
            columnar_only.engine_for("d", "t", true).unwrap(),
            Choice::Only(Engine::Columnar)
        );
    }
}
