//! The MySQL functions the query engine lacks, one module per family, each
//! with the list it registers. They are DataFusion UDFs over Arrow arrays
//! or scalar values; the rules they apply to values come from
//! [`crate::rules`]. The plan layer registers [`scalar`] and [`aggregates`]
//! with every query context and rewrites MySQL syntax into calls of them.

pub(crate) mod arithmetic;
pub(crate) mod collation;
pub(crate) mod comparison;
pub(crate) mod encoding;
pub(crate) mod json;
pub(crate) mod json_agg;
pub(crate) mod string;
pub(crate) mod time;
pub(crate) mod udf;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// Every scalar function, for registration with a query context.
pub(crate) fn scalar() -> Vec<ScalarUDF> {
    let mut all = arithmetic::all();
    all.extend(comparison::all());
    all.extend(encoding::all());
    all.extend(string::all());
    all.extend(time::all());
    all.extend(json::all());
    all.extend(collation::functions());
    all
}

/// Every aggregate function, for registration with a query context.
pub(crate) fn aggregates() -> Vec<AggregateUDF> {
    json_agg::aggregates()
}
