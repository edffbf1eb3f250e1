//! System variables: the catalogue of every `@@name` Duet knows, its type, scope
//! and default, and the rules for reading and setting it. Global values live in
//! [`Globals`] (one per database instance); a session keeps only its overrides.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use crate::SERVER_VERSION;
use crate::error::{Error, Result};
use crate::value::Value;

/// Where a variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Has a global value and a per-session copy.
    Both,
    /// Only global; sessions read the global value.
    Global,
    /// Only per session (e.g. `timestamp`, `last_insert_id`).
    Session,
}

/// The type of a variable, which decides what it accepts and how it prints.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `ON`/`OFF`, read as 1/0.
    Bool,
    /// An unsigned integer in `min..=max`.
    Int { min: u64, max: u64 },
    /// Free text.
    Str,
    /// One of a fixed list, stored in its canonical spelling.
    Enum(&'static [&'static str]),
    /// A comma-separated set of SQL modes.
    SqlMode,
    /// A character set name (NULL allowed).
    Charset,
    /// A collation name.
    Collation,
    /// `SYSTEM`, `UTC` or an offset `[+-]HH:MM`.
    TimeZone,
}

struct Def {
    name: &'static str,
    kind: Kind,
    scope: Scope,
    read_only: bool,
    default: &'static str,
}

const fn def(name: &'static str, kind: Kind, scope: Scope, default: &'static str) -> Def {
    Def {
        name,
        kind,
        scope,
        read_only: false,
        default,
    }
}

const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> Def {
    Def {
        name,
        kind,
        scope: Scope::Global,
        read_only: true,
        default,
    }
}

const U32: Kind = Kind::Int {
    min: 0,
    max: u32::MAX as u64,
};
const U64: Kind = Kind::Int {
    min: 0,
    max: u64::MAX,
};
const ISOLATION: Kind = Kind::Enum(&[
    "READ-UNCOMMITTED",
    "READ-COMMITTED",
    "REPEATABLE-READ",
    "SERIALIZABLE",
]);
const DEFAULT_SQL_MODE: &str = "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// The SQL modes MySQL 8.0 accepts, and the combination modes that expand into them.
const SQL_MODES: &[&str] = &[
    "ALLOW_INVALID_DATES",
    "ANSI_QUOTES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "HIGH_NOT_PRECEDENCE",
    "IGNORE_SPACE",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "NO_DIR_IN_CREATE",
    "NO_ENGINE_SUBSTITUTION",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_ZERO_DATE",
    "NO_ZERO_IN_DATE",
    "ONLY_FULL_GROUP_BY",
    "PAD_CHAR_TO_FULL_LENGTH",
    "PIPES_AS_CONCAT",
    "REAL_AS_FLOAT",
    "STRICT_ALL_TABLES",
    "STRICT_TRANS_TABLES",
    "TIME_TRUNCATE_FRACTIONAL",
];
const SQL_MODE_COMBOS: &[(&str, &str)] = &[
    (
        "ANSI",
        "REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ONLY_FULL_GROUP_BY",
    ),
    (
        "TRADITIONAL",
        "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
    ),
];
const CHARSETS: &[&str] = &["utf8mb4", "utf8mb3", "utf8", "ascii", "latin1", "binary"];
/// The read engines `duet_isolation_read_engines` may name.
const READ_ENGINES: Kind = Kind::Enum(&["row,columnar", "row", "columnar", "columnar,row"]);

/// Every variable Duet knows, sorted by name.
static DEFS: &[Def] = &[
    def(
        "auto_increment_increment",
        Kind::Int { min: 1, max: 65535 },
        Scope::Both,
        "1",
    ),
    def(
        "auto_increment_offset",
        Kind::Int { min: 1, max: 65535 },
        Scope::Both,
        "1",
    ),
    def("autocommit", Kind::Bool, Scope::Both, "ON"),
    def(
        "character_set_client",
        Kind::Charset,
        Scope::Both,
        "utf8mb4",
    ),
    def(
        "character_set_connection",
        Kind::Charset,
        Scope::Both,
        "utf8mb4",
    ),
    def(
        "character_set_database",
        Kind::Charset,
        Scope::Both,
        "utf8mb4",
    ),
    def(
        "character_set_results",
        Kind::Charset,
        Scope::Both,
        "utf8mb4",
    ),
    def(
        "character_set_server",
        Kind::Charset,
        Scope::Both,
        "utf8mb4",
    ),
    fixed("character_set_system", Kind::Charset, "utf8mb3"),
    def(
        "collation_connection",
        Kind::Collation,
        Scope::Both,
        "utf8mb4_bin",
    ),
    def(
        "collation_database",
        Kind::Collation,
        Scope::Both,
        "utf8mb4_bin",
    ),
    def(
        "collation_server",
        Kind::Collation,
        Scope::Both,
        "utf8mb4_bin",
    ),
    def("datadir", Kind::Str, Scope::Global, "./duet-data/"),
    def("default_storage_engine", Kind::Str, Scope::Both, "Duet"),
    def(
        "div_precision_increment",
        Kind::Int { min: 0, max: 30 },
        Scope::Both,
        "4",
    ),
    // Whether a transaction whose writes all fall in one region commits
    // in one Raft round, at a timestamp that region's leader picks
    // (TiDB's `tidb_enable_1pc`). Read when the transaction commits.
    def("duet_enable_1pc", Kind::Bool, Scope::Both, "ON"),
    def(
        "duet_isolation_read_engines",
        READ_ENGINES,
        Scope::Both,
        "row,columnar",
    ),
    // The memory one query may take, in bytes, before its sorts,
    // aggregates and joins spill to disk or, where they cannot, the query
    // fails with 8175 (TiDB's `tidb_mem_quota_query`).
    def(
        "duet_mem_quota_query",
        Kind::Int {
            min: 1 << 20,
            max: i64::MAX as u64,
        },
        Scope::Both,
        "1073741824",
    ),
    // How an explicit transaction writes (TiDB's `tidb_txn_mode`):
    // `pessimistic` locks the rows a statement changes or reads for update
    // when it runs, so a conflict waits there instead of failing the
    // commit; `optimistic` finds conflicts at commit (1213). Fixed for a
    // transaction when it begins.
    def(
        "duet_txn_mode",
        Kind::Enum(&["pessimistic", "optimistic"]),
        Scope::Both,
        "pessimistic",
    ),
    def("foreign_key_checks", Kind::Bool, Scope::Both, "ON"),
    def("group_concat_max_len", U64, Scope::Both, "1024"),
    fixed("have_ssl", Kind::Str, "DISABLED"),
    fixed("hostname", Kind::Str, "localhost"),
    def("init_connect", Kind::Str, Scope::Global, ""),
    def(
        "innodb_lock_wait_timeout",
        Kind::Int {
            min: 1,
            max: 1_073_741_824,
        },
        Scope::Both,
        "50",
    ),
    def(
        "interactive_timeout",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
        Scope::Both,
        "28800",
    ),
    def("last_insert_id", U64, Scope::Session, "0"),
    fixed("license", Kind::Str, "Apache-2.0"),
    def(
        "lock_wait_timeout",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
        Scope::Both,
        "31536000",
    ),
    fixed("lower_case_table_names", U32, "0"),
    def(
        "max_allowed_packet",
        Kind::Int {
            min: 1024,
            max: 1 << 30,
        },
        Scope::Global,
        "67108864",
    ),
    def(
        "max_connections",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        Scope::Global,
        "1000",
    ),
    def("max_execution_time", U32, Scope::Both, "0"),
    def(
        "net_buffer_length",
        Kind::Int {
            min: 1024,
            max: 1_048_576,
        },
        Scope::Both,
        "16384",
    ),
    def(
        "net_read_timeout",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
        Scope::Both,
        "30",
    ),
    def(
        "net_write_timeout",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
        Scope::Both,
        "60",
    ),
    def("performance_schema", Kind::Bool, Scope::Global, "OFF"),
    fixed("port", U32, "4000"),
    fixed("protocol_version", U32, "10"),
    def("query_cache_size", U64, Scope::Global, "0"),
    def(
        "query_cache_type",
        Kind::Enum(&["OFF", "ON", "DEMAND"]),
        Scope::Both,
        "OFF",
    ),
    fixed("socket", Kind::Str, ""),
    def("sql_auto_is_null", Kind::Bool, Scope::Both, "OFF"),
    def("sql_mode", Kind::SqlMode, Scope::Both, DEFAULT_SQL_MODE),
    def("sql_notes", Kind::Bool, Scope::Both, "ON"),
    def("sql_safe_updates", Kind::Bool, Scope::Both, "OFF"),
    def("sql_select_limit", U64, Scope::Both, "18446744073709551615"),
    def("sql_warnings", Kind::Bool, Scope::Both, "OFF"),
    fixed("system_time_zone", Kind::Str, "UTC"),
    def("time_zone", Kind::TimeZone, Scope::Both, "SYSTEM"),
    def(
        "transaction_isolation",
        ISOLATION,
        Scope::Both,
        "REPEATABLE-READ",
    ),
    def("transaction_read_only", Kind::Bool, Scope::Both, "OFF"),
    def("unique_checks", Kind::Bool, Scope::Both, "ON"),
    fixed("version", Kind::Str, SERVER_VERSION),
    fixed(
        "version_comment",
        Kind::Str,
        "Duet HTAP database (Apache-2.0)",
    ),
    fixed("version_compile_machine", Kind::Str, std::env::consts::ARCH),
    fixed("version_compile_os", Kind::Str, "Linux"),
    def(
        "wait_timeout",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
        Scope::Both,
        "28800",
    ),
];

/// Old names MySQL still accepts for a variable.
const ALIASES: &[(&str, &str)] = &[
    ("tx_isolation", "transaction_isolation"),
    ("tx_read_only", "transaction_read_only"),
];

fn lookup(name: &str) -> Result<&'static Def> {
    let lower = name.to_ascii_lowercase();
    let name = ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map_or(lower.as_str(), |(_, n)| n);
    DEFS.iter()
        .find(|d| d.name == name)
        .ok_or_else(|| Error::UnknownSystemVariable(lower.clone()))
}

/// The scope a `SET` or `@@` reference names explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarScope {
    Session,
    Global,
}

/// The global values of one database instance, shared by all sessions.
#[derive(Debug)]
pub(crate) struct Globals {
    values: RwLock<HashMap<&'static str, Value>>,
}

impl Globals {
    /// Defaults, with the given overrides (e.g. `port`, `version`) applied.
    pub(crate) fn new(overrides: &[(&str, Value)]) -> Self {
        let mut values: HashMap<&'static str, Value> =
            DEFS.iter().map(|d| (d.name, parse_default(d))).collect();
        for (name, value) in overrides {
            if let Ok(d) = lookup(name) {
                values.insert(d.name, value.clone());
            }
        }
        Globals {
            values: RwLock::new(values),
        }
    }

    fn get(&self, name: &'static str) -> Value {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values.get(name).cloned().unwrap_or(Value::Null)
    }
}

fn parse_default(d: &Def) -> Value {
    match d.kind {
        Kind::Bool => Value::Int(i64::from(d.default == "ON")),
        Kind::Int { .. } => Value::UInt(d.default.parse().unwrap_or(0)),
        _ if d.name == "socket" => Value::Null,
        _ => Value::Str(d.default.to_string()),
    }
}

/// One session's view of the system variables: its overrides over the globals.
#[derive(Debug, Default)]
pub(crate) struct SessionVars {
    overrides: HashMap<&'static str, Value>,
}

impl SessionVars {
    /// Reads `@@[scope.]name`.
    pub(crate) fn get(
        &self,
        globals: &Globals,
        name: &str,
        scope: Option<VarScope>,
    ) -> Result<Value> {
        let d = lookup(name)?;
        match (scope, d.scope) {
            (Some(VarScope::Global), Scope::Session) => {
                return Err(Error::SessionOnlyVariable(d.name.into()));
            }
            (Some(VarScope::Session), Scope::Global) => {
                return Err(Error::GlobalOnlyVariable(d.name.into()));
            }
            (Some(VarScope::Global), _) => return Ok(globals.get(d.name)),
            _ => {}
        }
        Ok(self
            .overrides
            .get(d.name)
            .cloned()
            .unwrap_or_else(|| globals.get(d.name)))
    }

    /// Sets a variable; `None` means `DEFAULT` (the global value, or the
    /// built-in default for a global).
    pub(crate) fn set(
        &mut self,
        globals: &Globals,
        name: &str,
        scope: VarScope,
        value: Option<Value>,
    ) -> Result<()> {
        let d = lookup(name)?;
        if d.read_only {
            return Err(Error::ReadOnlyVariable(d.name.into()));
        }
        match (scope, d.scope) {
            (VarScope::Session, Scope::Global) => Err(Error::GlobalOnlyVariable(d.name.into())),
            (VarScope::Global, Scope::Session) => Err(Error::SessionOnlyVariable(d.name.into())),
            (VarScope::Session, _) => {
                match value {
                    Some(v) => self.overrides.insert(d.name, coerce(d, v)?),
                    None => self.overrides.remove(d.name),
                };
                Ok(())
            }
            (VarScope::Global, _) => {
                let v = match value {
                    Some(v) => coerce(d, v)?,
                    None => parse_default(d),
                };
                let mut values = globals.values.write().unwrap_or_else(|e| e.into_inner());
                values.insert(d.name, v);
                Ok(())
            }
        }
    }

    /// `SHOW [SESSION|GLOBAL] VARIABLES`: every variable with its printed value.
    pub(crate) fn show(
        &self,
        globals: &Globals,
        scope: VarScope,
    ) -> BTreeMap<&'static str, String> {
        DEFS.iter()
            .filter(|d| !(scope == VarScope::Global && d.scope == Scope::Session))
            .map(|d| {
                let v = match scope {
                    VarScope::Global => globals.get(d.name),
                    VarScope::Session => self
                        .overrides
                        .get(d.name)
                        .cloned()
                        .unwrap_or_else(|| globals.get(d.name)),
                };
                (d.name, show_value(d, &v))
            })
            .collect()
    }

    /// Forgets every session override (`COM_RESET_CONNECTION`).
    pub(crate) fn reset(&mut self) {
        self.overrides.clear();
    }
}

fn show_value(d: &Def, v: &Value) -> String {
    match (d.kind, v) {
        (Kind::Bool, Value::Int(0)) => "OFF".into(),
        (Kind::Bool, _) => "ON".into(),
        _ => v
            .to_text()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
    }
}

/// Checks `v` against the variable's type and returns its canonical stored form.
fn coerce(d: &Def, v: Value) -> Result<Value> {
    let wrong_value = |v: &Value| Error::WrongValueForVariable {
        name: d.name.into(),
        value: v
            .to_text()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or("NULL".into()),
    };
    match d.kind {
        Kind::Bool => match &v {
            Value::Int(0) | Value::UInt(0) => Ok(Value::Int(0)),
            Value::Int(1) | Value::UInt(1) => Ok(Value::Int(1)),
            Value::Str(s) => match s.to_ascii_uppercase().as_str() {
                "ON" | "TRUE" => Ok(Value::Int(1)),
                "OFF" | "FALSE" => Ok(Value::Int(0)),
                _ => Err(wrong_value(&v)),
            },
            Value::Double(_) | Value::Decimal(_) => Err(Error::WrongTypeForVariable(d.name.into())),
            _ => Err(wrong_value(&v)),
        },
        Kind::Int { min, max } => {
            let n = match v {
                Value::Int(n) if n < 0 => min,
                Value::Int(n) => n as u64,
                Value::UInt(n) => n,
                _ => return Err(Error::WrongTypeForVariable(d.name.into())),
            };
            Ok(Value::UInt(n.clamp(min, max)))
        }
        Kind::Str => match v {
            Value::Str(_) => Ok(v),
            _ => Err(Error::WrongTypeForVariable(d.name.into())),
        },
        Kind::Enum(allowed) => {
            let hit = match &v {
                Value::Str(s) => allowed.iter().find(|a| a.eq_ignore_ascii_case(s)),
                Value::Int(i) => usize::try_from(*i).ok().and_then(|i| allowed.get(i)),
                Value::UInt(i) => usize::try_from(*i).ok().and_then(|i| allowed.get(i)),
                _ => None,
            };
            hit.map(|s| Value::Str((*s).into()))
                .ok_or_else(|| wrong_value(&v))
        }
        Kind::SqlMode => match &v {
            Value::Str(s) => normalize_sql_mode(s)
                .map(Value::Str)
                .ok_or_else(|| wrong_value(&v)),
            Value::Null => Err(wrong_value(&v)),
            _ => Err(Error::WrongTypeForVariable(d.name.into())),
        },
        Kind::Charset => match &v {
            Value::Null if d.name == "character_set_results" => Ok(Value::Null),
            Value::Str(s) => {
                let lower = s.to_ascii_lowercase();
                let name = if lower == "utf8" {
                    "utf8mb3".to_string()
                } else {
                    lower
                };
                if CHARSETS.contains(&name.as_str()) {
                    Ok(Value::Str(name))
                } else {
                    Err(Error::WrongValueForVariable {
                        name: d.name.into(),
                        value: s.clone(),
                    })
                }
            }
            _ => Err(wrong_value(&v)),
        },
        Kind::Collation => match &v {
            Value::Str(s) if is_known_collation(s) => Ok(Value::Str(s.to_ascii_lowercase())),
            _ => Err(wrong_value(&v)),
        },
        Kind::TimeZone => match &v {
            Value::Str(s) => normalize_time_zone(s)
                .map(Value::Str)
                .ok_or_else(|| Error::UnknownTimeZone(s.clone())),
            _ => Err(wrong_value(&v)),
        },
    }
}

/// Whether `name` names a collation of a character set Duet accepts.
pub(crate) fn is_known_collation(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "binary"
        || CHARSETS.iter().any(|cs| {
            lower
                .strip_prefix(cs)
                .is_some_and(|rest| rest.starts_with('_') && rest.len() > 1)
        })
}

/// Whether `name` is a character set Duet accepts.
pub(crate) fn is_known_charset(name: &str) -> bool {
    CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// Upper-cases, expands combination modes, checks each mode, and drops duplicates.
fn normalize_sql_mode(s: &str) -> Option<String> {
    let mut modes: Vec<&str> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let upper = part.to_ascii_uppercase();
        if let Some((_, expansion)) = SQL_MODE_COMBOS.iter().find(|(c, _)| *c == upper) {
            modes.extend(expansion.split(','));
        } else {
            modes.push(SQL_MODES.iter().find(|m| **m == upper)?);
        }
    }
    let mut seen = Vec::new();
    for m in modes {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    Some(seen.join(","))
}

/// Accepts `SYSTEM`, `UTC` and offsets from `-13:59` to `+14:00`.
fn normalize_time_zone(s: &str) -> Option<String> {
    if s.eq_ignore_ascii_case("SYSTEM") {
        return Some("SYSTEM".into());
    }
    if s.eq_ignore_ascii_case("UTC") {
        return Some("UTC".into());
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => ('+', &s[1..]),
        b'-' => ('-', &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h * 60 + m;
    let ok = m < 60
        && if sign == '+' {
            minutes <= 14 * 60
        } else {
            minutes < 14 * 60
        };
    ok.then(|| format!("{sign}{h:02}:{m:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Globals, SessionVars) {
        (
            Globals::new(&[("port", Value::UInt(4001))]),
            SessionVars::default(),
        )
    }

    #[test]
    fn defs_are_sorted_and_unique() {
        for w in DEFS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn session_overrides_and_defaults() {
        let (g, mut s) = setup();
        assert_eq!(s.get(&g, "AUTOCOMMIT", None).unwrap(), Value::Int(1));
        s.set(
            &g,
            "autocommit",
            VarScope::Session,
            Some(Value::Str("off".into())),
        )
        .unwrap();
        assert_eq!(s.get(&g, "autocommit", None).unwrap(), Value::Int(0));
        assert_eq!(
            s.get(&g, "autocommit", Some(VarScope::Global)).unwrap(),
            Value::Int(1)
        );
        s.set(&g, "autocommit", VarScope::Session, None).unwrap();
        assert_eq!(s.get(&g, "autocommit", None).unwrap(), Value::Int(1));
        assert_eq!(s.get(&g, "port", None).unwrap(), Value::UInt(4001));
    }

    #[test]
    fn wrong_values_are_refused() {
        let (g, mut s) = setup();
        let err = s
            .set(&g, "autocommit", VarScope::Session, Some(Value::Int(7)))
            .unwrap_err();
        assert_eq!(err.code(), 1231);
        let err = s
            .set(
                &g,
                "version",
                VarScope::Global,
                Some(Value::Str("x".into())),
            )
            .unwrap_err();
        assert_eq!(err.code(), 1238);
        let err = s.get(&g, "no_such_var", None).unwrap_err();
        assert_eq!(err.code(), 1193);
        let err = s
            .set(
                &g,
                "max_allowed_packet",
                VarScope::Session,
                Some(Value::Int(1)),
            )
            .unwrap_err();
        assert_eq!(err.code(), 1229);
    }

    #[test]
    fn sql_mode_is_normalized() {
        assert_eq!(
            normalize_sql_mode("strict_trans_tables, ansi_quotes").unwrap(),
            "STRICT_TRANS_TABLES,ANSI_QUOTES"
        );
        assert_eq!(normalize_sql_mode("").unwrap(), "");
        assert!(normalize_sql_mode("NOT_A_MODE").is_none());
        assert!(
            normalize_sql_mode("TRADITIONAL")
                .unwrap()
                .starts_with("STRICT_TRANS_TABLES")
        );
    }

    #[test]
    fn time_zones_and_aliases() {
        let (g, mut s) = setup();
        s.set(
            &g,
            "time_zone",
            VarScope::Session,
            Some(Value::Str("+8:00".into())),
        )
        .unwrap();
        assert_eq!(
            s.get(&g, "time_zone", None).unwrap(),
            Value::Str("+08:00".into())
        );
        let err = s
            .set(
                &g,
                "time_zone",
                VarScope::Session,
                Some(Value::Str("Mars/Base".into())),
            )
            .unwrap_err();
        assert_eq!(err.code(), 1298);
        s.set(
            &g,
            "tx_isolation",
            VarScope::Session,
            Some(Value::Str("read-committed".into())),
        )
        .unwrap();
        assert_eq!(
            s.get(&g, "transaction_isolation", None).unwrap(),
            Value::Str("READ-COMMITTED".into())
        );
    }
}
