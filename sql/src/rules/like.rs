//! MySQL's `LIKE` pattern match (`%`, `_` and backslash escapes), for the constant
//! path, `SHOW … LIKE` filters and JSON_SEARCH.

/// SQL `LIKE` with `%`, `_` and backslash escapes.
pub(crate) fn like(s: &str, pattern: &str, case_insensitive: bool) -> bool {
    let fold = |x: &str| {
        if case_insensitive {
            x.to_lowercase()
        } else {
            x.to_string()
        }
    };
    let (s, p): (Vec<char>, Vec<char>) =
        (fold(s).chars().collect(), fold(pattern).chars().collect());
    like_at(&s, &p)
}

fn like_at(s: &[char], p: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('%') => (0..=s.len()).any(|i| like_at(&s[i..], &p[1..])),
        Some('_') => !s.is_empty() && like_at(&s[1..], &p[1..]),
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && like_at(&s[1..], &p[2..]),
        Some(c) => s.first() == Some(c) && like_at(&s[1..], &p[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("sql_mode", "sql%", false));
        assert!(like("SQL_MODE", "sql\\_mode", true));
        assert!(!like("sqlxmode", "sql\\_mode", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abcd", "a_c", false));
    }
}
