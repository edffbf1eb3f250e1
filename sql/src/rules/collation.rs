//! Collations of text columns: which ones Duet has, and for each the sort
//! key that decides how two strings compare. `utf8mb4_bin` (the default)
//! compares code points; the `_ci` collations compare case- and
//! accent-insensitively, as MySQL's do:
//!
//! - `utf8mb4_general_ci`: one weight per character, its base letter
//!   upper-cased (`é` → `E`, `ß` → `S`); characters outside the BMP all
//!   weigh the same; trailing spaces are ignored (PAD SPACE).
//! - `utf8mb4_unicode_ci` and `utf8mb4_0900_ai_ci`: the Unicode Collation
//!   Algorithm at primary strength (`ß` = `ss`, `Æ` = `ae`), from ICU4X's
//!   root collation; `unicode_ci` ignores trailing spaces, `0900_ai_ci`
//!   does not (NO PAD). MySQL bases them on UCA 4.0.0 and 9.0.0; ICU4X on
//!   the current CLDR root, so the two differ only where those versions do.
//!
//! A sort key is bytes whose byte order is the collation's order, and
//! equal exactly when the strings are equal under it. Index entries and
//! clustered row keys of a `_ci` column hold its sort key (as TiDB's new
//! collations do), so unique keys and lookups follow the collation; the
//! query engines compare, sort and group such columns by the same key
//! (the plan's collation rewrite).
//!
//! The sort keys are stored in index keys: `icu_collator` is pinned to one
//! version, since another may order some strings differently and would
//! need the `_ci` indexes rebuilt.

use std::sync::LazyLock;

use icu_collator::options::{CollatorOptions, Strength};
use icu_collator::{CollatorBorrowed, CollatorPreferences};
use icu_normalizer::DecomposingNormalizerBorrowed;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A text column's collation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Collation {
    #[default]
    #[serde(rename = "utf8mb4_bin")]
    Bin,
    #[serde(rename = "utf8mb4_general_ci")]
    GeneralCi,
    #[serde(rename = "utf8mb4_unicode_ci")]
    UnicodeCi,
    #[serde(rename = "utf8mb4_0900_ai_ci")]
    Uca0900AiCi,
}

/// The field metadata key that marks a query engine column as text of a
/// `_ci` collation (its value is the collation's name).
pub const COLLATION_META: &str = "duet.collation";

/// The function giving a string's sort key: `duet_collate_key(s, name)`.
pub const KEY_FN: &str = "duet_collate_key";
/// The function folding a string for `LIKE`: `duet_collate_fold(s, name)`.
pub const FOLD_FN: &str = "duet_collate_fold";

static UCA_PRIMARY: LazyLock<CollatorBorrowed<'static>> = LazyLock::new(|| {
    let mut options = CollatorOptions::default();
    options.strength = Some(Strength::Primary);
    CollatorBorrowed::try_new(CollatorPreferences::default(), options)
        .expect("the root collation is compiled in")
});

impl Collation {
    /// The collation a name gives (MySQL's `utf8`/`utf8mb3` names map to
    /// their `utf8mb4` counterparts: Duet stores all text as utf8mb4).
    pub fn from_name(name: &str) -> Result<Collation> {
        let lower = name.to_ascii_lowercase();
        let suffix = ["utf8mb4_", "utf8mb3_", "utf8_"]
            .iter()
            .find_map(|p| lower.strip_prefix(p));
        Ok(match suffix {
            Some("bin") => Collation::Bin,
            Some("general_ci") => Collation::GeneralCi,
            Some("unicode_ci") => Collation::UnicodeCi,
            Some("0900_ai_ci") if lower.starts_with("utf8mb4_") => Collation::Uca0900AiCi,
            _ => return Err(Error::UnknownCollation(name.to_string())),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Collation::Bin => "utf8mb4_bin",
            Collation::GeneralCi => "utf8mb4_general_ci",
            Collation::UnicodeCi => "utf8mb4_unicode_ci",
            Collation::Uca0900AiCi => "utf8mb4_0900_ai_ci",
        }
    }

    /// Whether trailing spaces are ignored in comparisons.
    pub fn pads(self) -> bool {
        !matches!(self, Collation::Uca0900AiCi)
    }

    /// Whether strings compare by code point (no sort key needed).
    pub fn is_binary(self) -> bool {
        self == Collation::Bin
    }

    /// The bytes that order `s` as this collation does.
    pub fn sort_key(self, s: &str) -> Vec<u8> {
        let s = if self.pads() {
            s.trim_end_matches(' ')
        } else {
            s
        };
        match self {
            Collation::Bin => s.as_bytes().to_vec(),
            Collation::GeneralCi => {
                let mut key = Vec::with_capacity(s.len() * 2);
                for c in s.chars() {
                    key.extend_from_slice(&general_weight(c).to_be_bytes());
                }
                key
            }
            Collation::UnicodeCi | Collation::Uca0900AiCi => {
                let mut key = Vec::with_capacity(s.len() * 2);
                let Ok(()) = UCA_PRIMARY.write_sort_key_to(s, &mut key);
                key
            }
        }
    }

    /// The sort key of a value that may not be UTF-8 (its bytes, then).
    pub fn sort_key_bytes(self, b: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(b) {
            Ok(s) => self.sort_key(s),
            Err(_) => b.to_vec(),
        }
    }

    /// `s` with case and accents taken out, for `LIKE`: each character's
    /// base letter, lower-cased. (The UCA collations' expansions, such as
    /// `ß` = `ss`, are not applied here.)
    pub fn fold(self, s: &str) -> String {
        match self {
            Collation::Bin => s.to_string(),
            _ => s.chars().map(base_lower).collect(),
        }
    }
}

/// A character's base: the first character of its canonical decomposition
/// (`é` → `e`); itself when it has none.
fn base(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let nfd = DecomposingNormalizerBorrowed::new_nfd();
    let mut buf = [0u8; 4];
    nfd.normalize(c.encode_utf8(&mut buf))
        .chars()
        .next()
        .unwrap_or(c)
}

fn base_lower(c: char) -> char {
    let b = base(c);
    let mut lower = b.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => b,
    }
}

/// `utf8mb4_general_ci`'s weight of a character: its base, upper-cased
/// (the first character of a longer upper case, as `ß` → `S`); one weight
/// for every character beyond the BMP.
fn general_weight(c: char) -> u16 {
    if u32::from(c) > 0xFFFF {
        return 0xFFFD;
    }
    let b = base(c);
    let upper = b.to_uppercase().next().unwrap_or(b);
    u16::try_from(u32::from(upper)).unwrap_or(0xFFFD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(c: Collation, a: &str, b: &str) -> bool {
        c.sort_key(a) == c.sort_key(b)
    }

    #[test]
    fn names_round_trip_and_aliases_map_to_utf8mb4() {
        for c in [
            Collation::Bin,
            Collation::GeneralCi,
            Collation::UnicodeCi,
            Collation::Uca0900AiCi,
        ] {
            assert_eq!(Collation::from_name(c.name()).unwrap(), c);
        }
        assert_eq!(
            Collation::from_name("UTF8_GENERAL_CI").unwrap(),
            Collation::GeneralCi
        );
        assert!(matches!(
            Collation::from_name("latin1_swedish_ci"),
            Err(Error::UnknownCollation(_))
        ));
    }

    #[test]
    fn general_ci_ignores_case_accents_and_trailing_spaces() {
        let c = Collation::GeneralCi;
        assert!(eq(c, "abc", "ABC"));
        assert!(eq(c, "résumé", "RESUME"));
        assert!(eq(c, "abc  ", "abc"));
        assert!(eq(c, "ß", "s"));
        assert!(!eq(c, "ß", "ss"));
        assert!(!eq(c, "a", "b"));
        assert!(eq(c, "😀", "😺"), "beyond the BMP all weigh the same");
        // Order: letters by their upper case, so '_' sorts after them.
        assert!(c.sort_key("apple") < c.sort_key("Banana"));
        assert!(c.sort_key("Zebra") < c.sort_key("_x"));
        assert!(c.sort_key("ab") < c.sort_key("abc"));
    }

    #[test]
    fn uca_collations_expand_and_differ_in_padding() {
        for c in [Collation::UnicodeCi, Collation::Uca0900AiCi] {
            assert!(eq(c, "Straße", "STRASSE"), "{c:?}");
            assert!(eq(c, "Æro", "aero"), "{c:?}");
            assert!(eq(c, "café", "CAFE"), "{c:?}");
            assert!(!eq(c, "cafe", "cafes"), "{c:?}");
            assert!(c.sort_key("apple") < c.sort_key("Banana"), "{c:?}");
            assert!(c.sort_key("_x") < c.sort_key("a"), "{c:?}");
        }
        assert!(eq(Collation::UnicodeCi, "a  ", "a"));
        assert!(!eq(Collation::Uca0900AiCi, "a  ", "a"));
    }

    #[test]
    fn fold_lowers_base_letters() {
        assert_eq!(Collation::GeneralCi.fold("ÉCOLE Ü"), "ecole u");
        assert_eq!(Collation::Bin.fold("ÉA"), "ÉA");
    }
}
