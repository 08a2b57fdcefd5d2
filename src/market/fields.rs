//! Checked access to the fields of a CSV file whose columns are found by header name.
//!
//! Columns are looked up by name, not position, so a file may carry extra columns (the full
//! shared catalog has `vcpu` and `notes`) and may order them freely. Every failure names the
//! file, the line and the 1-based column.

use super::error::{MarketError, shown};

/// Reads the header of `reader`, for a file named `file`.
pub(crate) fn header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    file: &str,
) -> Result<Header, MarketError> {
    let names = reader
        .headers()
        .map_err(|e| csv_error(file, &e))?
        .iter()
        .map(str::to_owned)
        .collect();
    Ok(Header {
        file: file.to_owned(),
        names,
    })
}

/// A CSV reader that trims spaces and lets rows differ in length, so that a short or long row
/// is reported by us with its column instead of by the reader without one.
pub(crate) fn reader<R: std::io::Read>(source: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(source)
}

/// Converts a reader error into ours, keeping the line when the reader knows it.
pub(crate) fn csv_error(file: &str, err: &csv::Error) -> MarketError {
    MarketError::Csv {
        file: file.to_owned(),
        line: err.position().map_or(0, csv::Position::line),
        message: err.to_string(),
    }
}

/// The header line of one file.
#[derive(Debug)]
pub(crate) struct Header {
    file: String,
    names: Vec<String>,
}

/// A needed column: its position and its name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    index: usize,
    name: &'static str,
}

impl Header {
    /// The column called `name`, or an error naming the file.
    pub(crate) fn column(&self, name: &'static str) -> Result<Column, MarketError> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|index| Column { index, name })
            .ok_or_else(|| MarketError::MissingColumn {
                file: self.file.clone(),
                column: name,
            })
    }

    /// The file name used in errors.
    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    /// Wraps one record, rejecting a record longer than the header.
    pub(crate) fn row<'a>(&'a self, record: &'a csv::StringRecord) -> Result<Row<'a>, MarketError> {
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() > self.names.len() {
            return Err(MarketError::ExtraField {
                file: self.file.clone(),
                line,
                column: self.names.len() + 1,
                found: record.len(),
                expected: self.names.len(),
            });
        }
        Ok(Row {
            file: &self.file,
            line,
            record,
        })
    }
}

/// Largest price accepted anywhere, in US dollars per hour. No machine costs more; a bigger
/// number is a typo (or an attack) that would swamp every other node's score.
pub(crate) const MAX_DOLLARS_PER_HOUR: f64 = 1_000_000.0;
/// Smallest GPU count of an instance type (AWS sells 1/8 of an L4; 0.01 leaves room).
pub(crate) const MIN_GPUS: f64 = 0.01;
/// Largest GPU count of one instance type or node.
pub(crate) const MAX_GPUS: f64 = 4096.0;

/// What a number must satisfy besides being finite.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// `0 ≤ x ≤ MAX_DOLLARS_PER_HOUR`: a price.
    NonNegative,
    /// `MIN_GPUS ≤ x ≤ MAX_GPUS`: a GPU count (fractional GPUs such as 1/8 exist).
    Positive,
    /// `−100 ≤ x ≤ 100`: a savings percentage. Negative means spot costs more than on-demand,
    /// which the Spot Advisor feed does report (`ca-central-1` `p5.48xlarge`: −62).
    Savings,
}

/// One data row of a file.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    file: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    /// Line of this row in its file.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The raw (trimmed) text of `column`; empty text is allowed.
    pub(crate) fn text(&self, column: Column) -> Result<&str, MarketError> {
        self.record
            .get(column.index)
            .ok_or_else(|| MarketError::MissingField {
                file: self.file.to_owned(),
                line: self.line,
                column: column.index + 1,
                name: column.name,
            })
    }

    /// Non-empty text of `column`.
    pub(crate) fn required_text(&self, column: Column) -> Result<&str, MarketError> {
        let text = self.text(column)?;
        if text.is_empty() {
            return Err(self.empty(column));
        }
        Ok(text)
    }

    /// The number in `column`, `None` when the cell is empty.
    pub(crate) fn number(&self, column: Column, rule: Rule) -> Result<Option<f64>, MarketError> {
        let text = self.text(column)?;
        if text.is_empty() {
            return Ok(None);
        }
        let value: f64 = text
            .parse()
            .map_err(|_| self.invalid(column, text, "is not a number"))?;
        let problem = match rule {
            _ if !value.is_finite() => Some("is not finite"),
            Rule::Savings if !(-100.0..=100.0).contains(&value) => Some("is outside -100..=100"),
            Rule::Savings => None,
            _ if value < 0.0 => Some("is negative"),
            Rule::Positive if value == 0.0 => Some("must be greater than 0"),
            Rule::Positive if value < MIN_GPUS => Some("is below 0.01 GPUs"),
            Rule::Positive if value > MAX_GPUS => Some("is above 4096 GPUs"),
            Rule::NonNegative if value > MAX_DOLLARS_PER_HOUR => {
                Some("is above 1,000,000 dollars per hour")
            }
            Rule::NonNegative | Rule::Positive => None,
        };
        match problem {
            // `+ 0.0` turns a parsed "-0" into 0 so no caller ever sees a negative zero.
            None => Ok(Some(value + 0.0)),
            Some(problem) => Err(self.invalid(column, text, problem)),
        }
    }

    /// The number in `column`, which must not be empty.
    pub(crate) fn required_number(&self, column: Column, rule: Rule) -> Result<f64, MarketError> {
        self.number(column, rule)?.ok_or_else(|| self.empty(column))
    }

    /// A whole number in `column`, `None` when empty.
    pub(crate) fn whole_number(&self, column: Column) -> Result<Option<u32>, MarketError> {
        let text = self.text(column)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| self.invalid(column, text, "is not a whole number in 0..=4294967295"))
    }

    /// An "empty value" error for `column`.
    pub(crate) fn empty(&self, column: Column) -> MarketError {
        MarketError::EmptyValue {
            file: self.file.to_owned(),
            line: self.line,
            column: column.index + 1,
            name: column.name,
        }
    }

    /// An "invalid number" error for `column`.
    pub(crate) fn invalid(&self, column: Column, text: &str, problem: &'static str) -> MarketError {
        MarketError::InvalidNumber {
            file: self.file.to_owned(),
            line: self.line,
            column: column.index + 1,
            name: column.name,
            value: shown(text),
            problem,
        }
    }

    /// An "unknown band" error for `column`.
    pub(crate) fn unknown_band(&self, column: Column, text: &str) -> MarketError {
        MarketError::UnknownBand {
            file: self.file.to_owned(),
            line: self.line,
            column: column.index + 1,
            value: shown(text),
        }
    }

    /// An "inconsistent price" error for the per-GPU `column`.
    pub(crate) fn inconsistent(&self, column: Column, given: f64, expected: f64) -> MarketError {
        MarketError::InconsistentPrice {
            file: self.file.to_owned(),
            line: self.line,
            column: column.index + 1,
            name: column.name,
            given,
            expected,
        }
    }
}
