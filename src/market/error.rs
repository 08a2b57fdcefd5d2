//! The one error type of the `market` module.
//!
//! File errors read `file:line:column: what is wrong`, the form editors and CI logs link to.
//! Lines and columns are 1-based; line 1 is the CSV header.

/// Everything that can go wrong while loading market data or reading a node's annotations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MarketError {
    /// The CSV reader itself failed (invalid UTF-8, an unterminated quote, an I/O error).
    #[error("{file}:{line}: cannot read CSV: {message}")]
    Csv {
        /// Name of the file or source being read.
        file: String,
        /// Line where the reader stopped (0 when the reader could not tell).
        line: u64,
        /// The reader's own message.
        message: String,
    },
    /// The header line lacks a column the code needs.
    #[error("{file}:1: header has no column `{column}`")]
    MissingColumn {
        /// Name of the file or source being read.
        file: String,
        /// The missing column's name.
        column: &'static str,
    },
    /// A row ends before one of the needed columns.
    #[error("{file}:{line}:{column}: row ends before column `{name}`")]
    MissingField {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based position of the missing column in the header.
        column: usize,
        /// The missing column's name.
        name: &'static str,
    },
    /// A row has more fields than the header has columns.
    #[error("{file}:{line}:{column}: row has {found} fields but the header has {expected}")]
    ExtraField {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based position of the first field past the header's last column.
        column: usize,
        /// Fields in the row.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// A value that must be present is empty.
    #[error("{file}:{line}:{column}: `{name}` is empty")]
    EmptyValue {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based column.
        column: usize,
        /// Column name.
        name: &'static str,
    },
    /// A numeric value is unparsable, not finite, negative, zero where it must be positive, or
    /// out of range.
    #[error("{file}:{line}:{column}: `{name}` = {value:?} {problem}")]
    InvalidNumber {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based column.
        column: usize,
        /// Column name.
        name: &'static str,
        /// The offending text (shortened when long).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An interruption band that is none of the Spot Advisor's five.
    #[error(
        "{file}:{line}:{column}: {value:?} is not a Spot Advisor band \
         (expected 0..=4 or one of <5%, 5-10%, 10-15%, 15-20%, >20%)"
    )]
    UnknownBand {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based column.
        column: usize,
        /// The offending text (shortened when long).
        value: String,
    },
    /// The whole-instance price and the per-GPU price of one row disagree by more than rounding.
    #[error(
        "{file}:{line}:{column}: `{name}` = {given} but the whole-instance price / gpus gives \
         {expected}"
    )]
    InconsistentPrice {
        /// Name of the file or source being read.
        file: String,
        /// Line of the row.
        line: u64,
        /// 1-based column of the per-GPU price.
        column: usize,
        /// Column name of the per-GPU price.
        name: &'static str,
        /// The per-GPU price written in the file.
        given: f64,
        /// The per-GPU price implied by the whole-instance price.
        expected: f64,
    },
    /// The same (region, instance type) appears twice in one file.
    #[error(
        "{file}:{line}:1: region {region:?}, instance type {instance_type:?} already on line {first_line}"
    )]
    DuplicateRow {
        /// Name of the file or source being read.
        file: String,
        /// Line of the repeated row.
        line: u64,
        /// Line where the pair first appeared.
        first_line: u64,
        /// The repeated region.
        region: String,
        /// The repeated instance type.
        instance_type: String,
    },
    /// A node annotation that should hold a price does not.
    #[error("annotation {key}={value:?}: {problem}")]
    InvalidAnnotation {
        /// The annotation key.
        key: &'static str,
        /// The offending value (shortened when long).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Longest piece of user input copied into an error message; inputs are unbounded, messages
/// should not be.
const MAX_SHOWN_CHARS: usize = 64;

/// `value`, cut to [`MAX_SHOWN_CHARS`] characters with a marker when it was longer.
pub(crate) fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(shown("1.5"), "1.5");
        let long = "x".repeat(200);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn file_errors_name_file_line_and_column() {
        let err = MarketError::InvalidNumber {
            file: "prices.csv".into(),
            line: 3,
            column: 7,
            name: "od_usd_hr",
            value: "-1".into(),
            problem: "is negative",
        };
        assert_eq!(
            err.to_string(),
            "prices.csv:3:7: `od_usd_hr` = \"-1\" is negative"
        );
    }
}
