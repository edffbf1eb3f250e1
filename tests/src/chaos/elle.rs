//! A list-append checker in the manner of Elle (Kingsbury and Alvaro,
//! VLDB 2020), for snapshot isolation. Transactions append unique values
//! to lists and read whole lists; since a list only grows, every read of a
//! key is a prefix of the key's final order, so the longest read gives that
//! order, and each read tells which append it saw last. From that come the
//! dependencies between transactions — write-write (the next append to a
//! key), write-read (a read saw an append last) and read-write (a read did
//! not see the next append) — and the anomalies snapshot isolation forbids:
//! G0 (a cycle of write-write edges), G1c (of write-write and write-read),
//! G-single (a cycle with exactly one read-write edge), G1a (a read of an
//! aborted append), G1b (a read of an append its transaction later
//! followed with another to the same key), and reads no order explains.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// One operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mop {
    Append {
        key: u64,
        value: u64,
    },
    /// The list read (`None` if the transaction did not get to know it).
    Read {
        key: u64,
        value: Option<Vec<u64>>,
    },
}

/// How a transaction ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Surely not committed (an error before the commit was sent, or one
    /// the database says rolled it back).
    Aborted,
    /// The answer was lost: it may have committed.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub ops: Vec<Mop>,
    pub outcome: Outcome,
}

/// Why one transaction depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Edge {
    WriteWrite,
    WriteRead,
    ReadWrite,
}

/// Something snapshot isolation does not allow, with the transactions in
/// it (indexes into the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// Two reads of `key` that are not prefixes of one order.
    IncompatibleOrder { key: u64, a: Vec<u64>, b: Vec<u64> },
    /// A value read that no transaction appended.
    Phantom { key: u64, value: u64, reader: usize },
    G1a {
        key: u64,
        value: u64,
        writer: usize,
        reader: usize,
    },
    G1b {
        key: u64,
        value: u64,
        writer: usize,
        reader: usize,
    },
    /// A cycle of the kind named, as `(from, edge, to)` steps.
    Cycle {
        kind: &'static str,
        steps: Vec<(usize, Edge, usize)>,
    },
}

/// Every anomaly in `history` (empty: consistent with snapshot isolation).
pub fn check(history: &[Txn]) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let writers = writers(history);
    let orders = orders(history, &mut anomalies);
    aborted_and_intermediate_reads(history, &writers, &mut anomalies);
    let graph = dependencies(history, &writers, &orders);
    anomalies.extend(cycles(&graph));
    anomalies
}

impl Anomaly {
    /// The transactions the anomaly involves (indexes into the history).
    pub fn transactions(&self) -> BTreeSet<usize> {
        match self {
            Anomaly::IncompatibleOrder { .. } => BTreeSet::new(),
            Anomaly::Phantom { reader, .. } => BTreeSet::from([*reader]),
            Anomaly::G1a { writer, reader, .. } | Anomaly::G1b { writer, reader, .. } => {
                BTreeSet::from([*writer, *reader])
            }
            Anomaly::Cycle { steps, .. } => steps.iter().flat_map(|(a, _, b)| [*a, *b]).collect(),
        }
    }
}

/// A report of `anomalies`: each one, then the operations and outcome of
/// every transaction in it.
pub fn explain(history: &[Txn], anomalies: &[Anomaly]) -> String {
    let mut out = String::new();
    for a in anomalies {
        out.push_str(&format!("{a:?}\n"));
        for t in a.transactions() {
            out.push_str(&format!(
                "  T{t}: {:?} {:?}\n",
                history[t].outcome, history[t].ops
            ));
        }
    }
    out
}

/// Who appended each `(key, value)`, and where in its transaction.
fn writers(history: &[Txn]) -> HashMap<(u64, u64), usize> {
    let mut writers = HashMap::new();
    for (i, t) in history.iter().enumerate() {
        for op in &t.ops {
            if let Mop::Append { key, value } = op {
                writers.insert((*key, *value), i);
            }
        }
    }
    writers
}

/// Every whole read of a committed transaction: (its index, key, list).
fn committed_reads(history: &[Txn]) -> impl Iterator<Item = (usize, &u64, &Vec<u64>)> {
    (history.iter().enumerate())
        .filter(|(_, t)| t.outcome == Outcome::Committed)
        .flat_map(|(i, t)| {
            t.ops.iter().filter_map(move |op| match op {
                Mop::Read {
                    key,
                    value: Some(list),
                } => Some((i, key, list)),
                _ => None,
            })
        })
}

/// Each key's version order: its longest committed read, checked against
/// every other read of it.
fn orders(history: &[Txn], anomalies: &mut Vec<Anomaly>) -> BTreeMap<u64, Vec<u64>> {
    let mut orders: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut all: Vec<(u64, &Vec<u64>)> = (committed_reads(history))
        .map(|(_, key, read)| (*key, read))
        .collect();
    all.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (key, read) in all {
        match orders.get(&key) {
            None => {
                orders.insert(key, read.clone());
            }
            Some(longest) if longest.starts_with(read) => {}
            Some(longest) => anomalies.push(Anomaly::IncompatibleOrder {
                key,
                a: longest.clone(),
                b: read.clone(),
            }),
        }
    }
    orders
}

fn aborted_and_intermediate_reads(
    history: &[Txn],
    writers: &HashMap<(u64, u64), usize>,
    anomalies: &mut Vec<Anomaly>,
) {
    for (reader, key, list) in committed_reads(history) {
        for value in list {
            let Some(&writer) = writers.get(&(*key, *value)) else {
                anomalies.push(Anomaly::Phantom {
                    key: *key,
                    value: *value,
                    reader,
                });
                continue;
            };
            if history[writer].outcome == Outcome::Aborted {
                anomalies.push(Anomaly::G1a {
                    key: *key,
                    value: *value,
                    writer,
                    reader,
                });
            }
        }
        // The last value seen must be its writer's last append to the
        // key (unless the reader is the writer itself).
        let Some(last) = list.last() else { continue };
        let Some(&writer) = writers.get(&(*key, *last)) else {
            continue;
        };
        let final_append = (history[writer].ops.iter().rev()).find_map(|op| match op {
            Mop::Append { key: k, value } if k == key => Some(*value),
            _ => None,
        });
        if writer != reader && final_append != Some(*last) {
            anomalies.push(Anomaly::G1b {
                key: *key,
                value: *last,
                writer,
                reader,
            });
        }
    }
}

type Graph = BTreeMap<usize, BTreeSet<(usize, Edge)>>;

/// The dependency graph over committed transactions (and those of unknown
/// outcome whose appends were seen: they committed).
fn dependencies(
    history: &[Txn],
    writers: &HashMap<(u64, u64), usize>,
    orders: &BTreeMap<u64, Vec<u64>>,
) -> Graph {
    let mut graph = Graph::new();
    let aborted = |t: usize| history[t].outcome == Outcome::Aborted;
    let mut add = |from: usize, edge: Edge, to: usize| {
        if from != to && !aborted(from) && !aborted(to) {
            graph.entry(from).or_default().insert((to, edge));
        }
    };
    // Committed appends no read saw: after every read of their key.
    let mut unseen: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for (w, t) in history.iter().enumerate() {
        for op in &t.ops {
            if let Mop::Append { key, value } = op
                && t.outcome == Outcome::Committed
                && !orders.get(key).is_some_and(|o| o.contains(value))
            {
                unseen.entry(*key).or_default().insert(w);
            }
        }
    }
    for (key, order) in orders {
        let writer_of = |v: &u64| writers.get(&(*key, *v)).copied();
        for pair in order.windows(2) {
            if let (Some(a), Some(b)) = (writer_of(&pair[0]), writer_of(&pair[1])) {
                add(a, Edge::WriteWrite, b);
            }
        }
    }
    for (reader, key, list) in committed_reads(history) {
        let order = orders.get(key).map_or(&[][..], Vec::as_slice);
        if let Some(w) = list.last().and_then(|v| writers.get(&(*key, *v))) {
            add(*w, Edge::WriteRead, reader);
        }
        // The append after what it saw was not visible to it.
        let next = order.get(list.len());
        if let Some(w) = next.and_then(|v| writers.get(&(*key, *v))) {
            add(reader, Edge::ReadWrite, *w);
        } else if next.is_none() {
            for w in unseen.get(key).into_iter().flatten() {
                add(reader, Edge::ReadWrite, *w);
            }
        }
    }
    graph
}

/// The forbidden cycles: G0 over write-write edges, G1c over write-write
/// and write-read, G-single as one read-write edge closed by a path of the
/// others. Every cycle lies inside one strongly connected component of the
/// whole graph, so only edges within one are looked at, and each search
/// stays inside its component: a long consistent history costs linear
/// time. The first example found is reported.
fn cycles(graph: &Graph) -> Vec<Anomaly> {
    let component = components(graph);
    let same = |a: usize, b: usize| component.get(&a) == component.get(&b);
    let only = |allowed: &'static [Edge]| move |e: Edge| allowed.contains(&e);
    for (kind, allowed, first) in [
        ("G0", &[Edge::WriteWrite][..], &[Edge::WriteWrite][..]),
        (
            "G1c",
            &[Edge::WriteWrite, Edge::WriteRead][..],
            &[Edge::WriteWrite, Edge::WriteRead][..],
        ),
        (
            "G-single",
            &[Edge::WriteWrite, Edge::WriteRead][..],
            &[Edge::ReadWrite][..],
        ),
    ] {
        let keep = only(allowed);
        for (&from, targets) in graph {
            for &(to, edge) in targets {
                if !first.contains(&edge) || !same(from, to) {
                    continue;
                }
                let inside = |e: Edge, next: usize| keep(e) && same(next, from);
                if let Some(mut back) = path(graph, to, from, &inside) {
                    back.insert(0, (from, edge, to));
                    if kind == "G1c" && back.iter().all(|s| s.1 == Edge::WriteWrite) {
                        continue;
                    }
                    return vec![Anomaly::Cycle { kind, steps: back }];
                }
            }
        }
    }
    Vec::new()
}

/// Each vertex's strongly connected component (Tarjan's algorithm, with an
/// explicit stack: a history's chains are too long for recursion).
fn components(graph: &Graph) -> HashMap<usize, usize> {
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut low: HashMap<usize, usize> = HashMap::new();
    let mut on_stack = BTreeSet::new();
    let mut stack = Vec::new();
    let mut component = HashMap::new();
    let next_of = |v: usize| -> Vec<usize> {
        (graph.get(&v).into_iter().flatten())
            .map(|(to, _)| *to)
            .collect()
    };
    for &root in graph.keys() {
        if index.contains_key(&root) {
            continue;
        }
        // (vertex, its successors, how many of them are done)
        let mut work = vec![(root, next_of(root), 0usize)];
        index.insert(root, index.len());
        low.insert(root, index[&root]);
        stack.push(root);
        on_stack.insert(root);
        while let Some((v, succ, done)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*done) {
                *done += 1;
                if !index.contains_key(&w) {
                    index.insert(w, index.len());
                    low.insert(w, index[&w]);
                    stack.push(w);
                    on_stack.insert(w);
                    work.push((w, next_of(w), 0));
                } else if on_stack.contains(&w) {
                    low.insert(v, low[&v].min(index[&w]));
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low.insert(*parent, low[parent].min(low[&v]));
            }
            if low[&v] == index[&v] {
                while let Some(w) = stack.pop() {
                    on_stack.remove(&w);
                    component.insert(w, v);
                    if w == v {
                        break;
                    }
                }
            }
        }
    }
    component
}

/// The shortest path from `from` to `to` over edges `keep` allows.
fn path(
    graph: &Graph,
    from: usize,
    to: usize,
    keep: &impl Fn(Edge, usize) -> bool,
) -> Option<Vec<(usize, Edge, usize)>> {
    let mut came: HashMap<usize, (usize, Edge)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut steps = Vec::new();
            let mut cur = to;
            while cur != from {
                let (prev, edge) = came[&cur];
                steps.push((prev, edge, cur));
                cur = prev;
            }
            steps.reverse();
            return Some(steps);
        }
        for &(next, edge) in graph.get(&at).into_iter().flatten() {
            if keep(edge, next) && seen.insert(next) {
                came.insert(next, (at, edge));
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(key: u64, value: u64) -> Mop {
        Mop::Append { key, value }
    }

    fn read(key: u64, value: &[u64]) -> Mop {
        Mop::Read {
            key,
            value: Some(value.to_vec()),
        }
    }

    fn ok(ops: Vec<Mop>) -> Txn {
        Txn {
            ops,
            outcome: Outcome::Committed,
        }
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<&'static str> {
        (anomalies.iter())
            .map(|a| match a {
                Anomaly::IncompatibleOrder { .. } => "incompatible-order",
                Anomaly::Phantom { .. } => "phantom",
                Anomaly::G1a { .. } => "G1a",
                Anomaly::G1b { .. } => "G1b",
                Anomaly::Cycle { kind, .. } => kind,
            })
            .collect()
    }

    #[test]
    fn a_serial_history_has_no_anomaly() {
        let history = vec![
            ok(vec![append(1, 1), read(1, &[1])]),
            ok(vec![read(1, &[1]), append(1, 2), append(2, 1)]),
            ok(vec![read(1, &[1, 2]), read(2, &[1])]),
        ];
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn write_skew_is_allowed_under_snapshot_isolation() {
        // Each reads both keys empty and appends to one: two read-write
        // edges in the cycle (G2), which snapshot isolation permits.
        let history = vec![
            ok(vec![read(1, &[]), read(2, &[]), append(1, 1)]),
            ok(vec![read(1, &[]), read(2, &[]), append(2, 1)]),
            ok(vec![read(1, &[1]), read(2, &[1])]),
        ];
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn a_lost_update_is_g_single() {
        // Both read [1] then append: the second misses the first's append
        // though it comes after it in the order.
        let history = vec![
            ok(vec![append(1, 1)]),
            ok(vec![read(1, &[1]), append(1, 2)]),
            ok(vec![read(1, &[1]), append(1, 3)]),
            ok(vec![read(1, &[1, 2, 3])]),
        ];
        assert_eq!(kinds(&check(&history)), vec!["G-single"]);
    }

    #[test]
    fn circular_information_flow_is_g1c() {
        let history = vec![
            ok(vec![append(1, 1), read(2, &[1])]),
            ok(vec![append(2, 1), read(1, &[1])]),
        ];
        assert_eq!(kinds(&check(&history)), vec!["G1c"]);
    }

    #[test]
    fn write_cycles_are_g0() {
        // Key 1 says T0 then T1; key 2 says T1 then T0.
        let history = vec![
            ok(vec![append(1, 1), append(2, 2)]),
            ok(vec![append(1, 2), append(2, 1)]),
            ok(vec![read(1, &[1, 2]), read(2, &[1, 2])]),
        ];
        assert_eq!(kinds(&check(&history)), vec!["G0"]);
    }

    #[test]
    fn aborted_intermediate_and_unexplained_reads_are_reported() {
        let history = vec![
            Txn {
                ops: vec![append(1, 1)],
                outcome: Outcome::Aborted,
            },
            ok(vec![append(2, 1), append(2, 2)]),
            ok(vec![read(1, &[1]), read(2, &[1]), read(3, &[9])]),
            ok(vec![read(2, &[2])]),
        ];
        let found = kinds(&check(&history));
        for kind in ["G1a", "G1b", "phantom", "incompatible-order"] {
            assert!(found.contains(&kind), "{kind} in {found:?}");
        }
    }

    #[test]
    fn a_long_serial_history_is_consistent() {
        // Six thousand transactions in one chain: no recursion to
        // overflow, and every edge between distinct components skipped.
        let mut history = Vec::new();
        let mut list = Vec::new();
        for v in 0..3_000u64 {
            history.push(ok(vec![read(v % 3, &[]), append(7, v)]));
            history.push(ok(vec![read(7, &list)]));
            list.push(v);
        }
        history.push(ok(vec![read(7, &list)]));
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn a_report_names_the_transactions_of_each_anomaly() {
        let history = vec![
            ok(vec![read(1, &[]), append(1, 1)]),
            ok(vec![read(1, &[]), append(1, 2)]),
            ok(vec![read(1, &[1, 2])]),
        ];
        let anomalies = check(&history);
        let report = explain(&history, &anomalies);
        assert!(report.contains("Cycle"), "{report}");
        assert!(
            report.contains("T0: Committed") && report.contains("T1: Committed"),
            "{report}"
        );
    }

    #[test]
    fn an_unknown_outcome_counts_only_if_seen() {
        let history = vec![
            Txn {
                ops: vec![append(1, 1)],
                outcome: Outcome::Unknown,
            },
            Txn {
                ops: vec![append(1, 2)],
                outcome: Outcome::Unknown,
            },
            ok(vec![read(1, &[1])]),
        ];
        assert_eq!(check(&history), vec![]);
    }
}
