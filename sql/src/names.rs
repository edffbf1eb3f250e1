//! The names MySQL gives unaliased result columns: the text of each select
//! item as the client typed it (`SUBSTRING('hello',2,3)`, `-a`, `7 DIV 2`).
//! The parser's spans do not always cover a whole expression, so the select
//! list is cut from the statement's text at its top-level commas instead.

/// Words that end a select list at the top level.
const ENDS: &[&str] = &[
    "FROM",
    "WHERE",
    "GROUP",
    "HAVING",
    "ORDER",
    "LIMIT",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "INTO",
    "FOR",
    "LOCK",
    "WINDOW",
];

/// Modifiers that may open a select list.
const MODIFIERS: &[&str] = &[
    "ALL",
    "DISTINCT",
    "DISTINCTROW",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_NO_CACHE",
    "SQL_CALC_FOUND_ROWS",
];

/// The text of each item of the outermost select list of `sql`, trimmed;
/// `None` if the statement has no select list this scan understands.
pub(crate) fn select_items(sql: &str) -> Option<Vec<String>> {
    let tokens = top_level_words(sql);
    let select = tokens
        .iter()
        .position(|(w, _, _)| w.eq_ignore_ascii_case("SELECT"))?;
    let mut start = tokens[select].2;
    let mut next = select + 1;
    while let Some((w, _, end)) = tokens.get(next) {
        if MODIFIERS.iter().any(|m| w.eq_ignore_ascii_case(m)) {
            start = *end;
            next += 1;
        } else {
            break;
        }
    }
    let end = tokens[next..]
        .iter()
        .find(|(w, _, _)| ENDS.iter().any(|e| w.eq_ignore_ascii_case(e)))
        .map_or(sql.trim_end().trim_end_matches(';').len(), |(_, s, _)| *s);
    if end < start {
        return None;
    }
    let list = &sql[start..end];
    let mut items = Vec::new();
    let mut from = 0;
    for comma in top_level(list, |c| c == ',') {
        items.push(strip_comments(&list[from..comma]).trim().to_string());
        from = comma + 1;
    }
    items.push(strip_comments(&list[from..]).trim().to_string());
    Some(items)
}

/// Removes `/* … */` comments (optimizer hints) from an item's text.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("/*") {
        out.push_str(&rest[..open]);
        match rest[open..].find("*/") {
            Some(close) => rest = &rest[open + close + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Byte offsets of the characters `want` accepts at parenthesis depth 0,
/// outside quotes and comments.
fn top_level(text: &str, want: impl Fn(char) -> bool) -> Vec<usize> {
    let mut out = Vec::new();
    scan(text, |i, c, depth| {
        if depth == 0 && want(c) {
            out.push(i);
        }
    });
    out
}

/// Words at depth 0 with their byte ranges.
fn top_level_words(text: &str) -> Vec<(String, usize, usize)> {
    let mut words: Vec<(String, usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    scan(text, |i, c, depth| {
        let word_char = c.is_ascii_alphanumeric() || c == '_';
        if depth == 0 && word_char {
            match &mut current {
                Some((_, end)) if *end == i => *end = i + c.len_utf8(),
                _ => {
                    if let Some((s, e)) = current.take() {
                        words.push((text[s..e].to_string(), s, e));
                    }
                    current = Some((i, i + c.len_utf8()));
                }
            }
        } else if let Some((s, e)) = current.take() {
            words.push((text[s..e].to_string(), s, e));
        }
    });
    if let Some((s, e)) = current {
        words.push((text[s..e].to_string(), s, e));
    }
    // A word directly after `.` or `@` is a name part, not a keyword.
    words.retain(|(_, s, _)| {
        !text[..*s]
            .chars()
            .next_back()
            .is_some_and(|p| p == '.' || p == '@')
    });
    words
}

/// Calls `visit(offset, char, depth)` for every character outside quoted
/// strings, quoted names and comments.
fn scan(text: &str, mut visit: impl FnMut(usize, char, usize)) {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // Skip to the closing quote; doubled quotes and (in
                // strings) backslashes escape.
                while let Some((_, d)) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        if chars.peek().is_some_and(|(_, n)| *n == c) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                let mut prev = ' ';
                for (_, d) in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '#' => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '-' if chars.peek().is_some_and(|(_, n)| *n == '-') => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                visit(i, c, depth);
                depth += 1;
            }
            ')' => {
                depth = depth.saturating_sub(1);
                visit(i, c, depth);
            }
            _ => visit(i, c, depth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_cut_at_top_level_commas_as_typed() {
        assert_eq!(
            select_items("SELECT SUBSTRING('a,b',2,3), -a, FLOOR(2.5) ,7 DIV 2 FROM t WHERE x")
                .unwrap(),
            ["SUBSTRING('a,b',2,3)", "-a", "FLOOR(2.5)", "7 DIV 2"]
        );
        assert_eq!(
            select_items("select /*+ READ_FROM_STORAGE(ROW[t]) */ distinct a.from, `x,y` from t")
                .unwrap(),
            ["a.from", "`x,y`"]
        );
        assert_eq!(
            select_items("SELECT 1, 'it''s', \"q\\\"\" ;").unwrap(),
            ["1", "'it''s'", "\"q\\\"\""]
        );
        assert_eq!(
            select_items("WITH c AS (SELECT 1 AS x FROM t) SELECT x + 1, (SELECT 2 FROM u) FROM c")
                .unwrap(),
            ["x + 1", "(SELECT 2 FROM u)"]
        );
        assert_eq!(
            select_items("SELECT @@version, @from FOR UPDATE").unwrap(),
            ["@@version", "@from"]
        );
        assert!(select_items("INSERT INTO t VALUES (1)").is_none());
    }
}
