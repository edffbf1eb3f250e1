//! MySQL's rules for values, on their own: how text reads as a number, the
//! calendar and the clock, `LIKE`, JSON documents and collations. These are
//! leaves: they import only [`crate::value`] and [`crate::error`], never
//! DataFusion plans or the session, so every path that needs a rule (the
//! constant evaluator, the query engines' functions, stored values) calls
//! the same one.

pub(crate) mod collation;
pub(crate) mod json;
pub(crate) mod like;
pub(crate) mod number;
pub(crate) mod time;
