//! Reader for the Alibaba GPU cluster trace (`openb_*` CSV files of `alibaba/clusterdata`
//! `cluster-trace-gpu-v2023`, used by the FGD paper, USENIX ATC '23).
//!
//! Columns are found by header name, so their order does not matter and extra columns are
//! ignored. Every row is checked against the rules the trace itself follows (see
//! `benches/traces/alibaba-openb/README.md`), so `sim` can trust what it gets. Files may come
//! from anywhere, so size, row count and field length are bounded before anything is kept.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::num::{IntErrorKind, ParseIntError};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use csv::{ReaderBuilder, StringRecord, Trim};

use super::{MAX_GPUS_PER_NODE, Qos, TraceNode, TracePod};
use crate::market::labels::HOURLY_PRICE_ANNOTATION;
use crate::market::{CapacityType, node_price_override};

#[cfg(test)]
mod tests;

/// Largest file accepted, in bytes (64 MiB; the openb files are under 1 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most data rows accepted in one file (the openb files have about 8,000).
pub const MAX_ROWS: u64 = 1_000_000;
/// Longest field accepted, in bytes (the longest openb field has 15).
pub const MAX_FIELD_BYTES: usize = 256;

/// One whole GPU in thousandths: the largest `gpu_milli`.
const WHOLE_GPU_MILLI: u32 = 1000;

const NODE_NAME: &str = "sn";
const NODE_GPU: &str = "gpu";
const NODE_MODEL: &str = "model";
const POD_NAME: &str = "name";
const NUM_GPU: &str = "num_gpu";
const GPU_MILLI: &str = "gpu_milli";
const GPU_SPEC: &str = "gpu_spec";
const QOS: &str = "qos";
const CPU_MILLI: &str = "cpu_milli";
const MEMORY_MIB: &str = "memory_mib";
const CREATION_TIME: &str = "creation_time";
const DELETION_TIME: &str = "deletion_time";
const SCHEDULED_TIME: &str = "scheduled_time";
const INSTANCE_TYPE: &str = "instance_type";
const CAPACITY_TYPE: &str = "capacity_type";
const HOURLY_PRICE: &str = "hourly_price";

const NODE_COLUMNS: &[&str] = &[NODE_NAME, CPU_MILLI, MEMORY_MIB, NODE_GPU, NODE_MODEL];
/// The five columns every pod list has; the `multigpu*` variants have only these.
const POD_COLUMNS: &[&str] = &[POD_NAME, CPU_MILLI, MEMORY_MIB, NUM_GPU, GPU_MILLI];

const BUNDLED_NODES: &str =
    include_str!("../../benches/traces/alibaba-openb/openb_node_list_gpu_node.csv");
const BUNDLED_PODS: &str =
    include_str!("../../benches/traces/alibaba-openb/openb_pod_list_default.csv");
const BUNDLED_GPUSHARE100_PODS: &str =
    include_str!("../../benches/traces/alibaba-openb/openb_pod_list_gpushare100.csv");

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{}: cannot read the file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A caller-supplied reader failed.
    #[error("{source_name}: cannot read")]
    Read {
        /// Name of the input, as given by the caller.
        source_name: String,
        /// What the reader said.
        source: io::Error,
    },
    /// The input is not well-formed CSV (bad UTF-8, or a row with the wrong number of fields).
    #[error("{source_name} line {line}: malformed CSV")]
    Csv {
        /// Name of the input.
        source_name: String,
        /// 1-based line where the problem is.
        line: u64,
        /// What the CSV parser said.
        source: csv::Error,
    },
    /// The header lacks a required column.
    #[error("{source_name} line 1: required column {column} is missing from the header")]
    MissingColumn {
        /// Name of the input.
        source_name: String,
        /// The missing column.
        column: &'static str,
    },
    /// The header names a column twice, so it is unclear which one to read.
    #[error("{source_name} line 1: column {column} appears more than once in the header")]
    DuplicateColumn {
        /// Name of the input.
        source_name: String,
        /// The repeated column.
        column: String,
    },
    /// A value is malformed or breaks one of the trace's rules.
    #[error("{source_name} line {line}, column {column}: {value:?} {reason}")]
    InvalidField {
        /// Name of the input.
        source_name: String,
        /// 1-based line of the row.
        line: u64,
        /// The column holding the value.
        column: String,
        /// The value as written.
        value: String,
        /// What is wrong with it, phrased to follow the value.
        reason: String,
    },
    /// Two rows have the same node or pod name.
    #[error(
        "{source_name} line {line}, column {column}: {value:?} is already used on line {first_line}"
    )]
    Duplicate {
        /// Name of the input.
        source_name: String,
        /// 1-based line of the second row.
        line: u64,
        /// The name column.
        column: &'static str,
        /// The repeated name.
        value: String,
        /// 1-based line of the first row with this name.
        first_line: u64,
    },
    /// The input has no data rows (it is empty or has only a header).
    #[error("{source_name}: no rows (the input is empty or has only a header)")]
    Empty {
        /// Name of the input.
        source_name: String,
    },
    /// The input is larger than [`MAX_FILE_BYTES`].
    #[error("{source_name}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// Name of the input.
        source_name: String,
        /// The limit that was passed.
        limit: u64,
    },
    /// The input has more than [`MAX_ROWS`] data rows.
    #[error("{source_name} line {line}: more than the limit of {limit} rows")]
    TooManyRows {
        /// Name of the input.
        source_name: String,
        /// 1-based line of the first row over the limit.
        line: u64,
        /// The limit that was passed.
        limit: u64,
    },
    /// A field is longer than [`MAX_FIELD_BYTES`].
    #[error(
        "{source_name} line {line}, column {column}: field of {bytes} bytes is over the limit of {limit}"
    )]
    FieldTooLong {
        /// Name of the input.
        source_name: String,
        /// 1-based line of the field.
        line: u64,
        /// The column of the field (`#n` when the header itself is too long to name it).
        column: String,
        /// Length of the field in bytes.
        bytes: usize,
        /// The limit that was passed.
        limit: usize,
    },
}

/// Reads a node list (`openb_node_list_*.csv`) from a file.
pub fn read_nodes(path: &Path) -> Result<Vec<TraceNode>, TraceError> {
    let bytes = read_file(path)?;
    parse_nodes(&bytes, &path.display().to_string())
}

/// Reads a pod list (`openb_pod_list_*.csv`) from a file.
pub fn read_pods(path: &Path) -> Result<Vec<TracePod>, TraceError> {
    let bytes = read_file(path)?;
    parse_pods(&bytes, &path.display().to_string())
}

/// Reads a node list from any reader; `source` names the input in errors.
pub fn read_nodes_from<R: Read>(reader: R, source: &str) -> Result<Vec<TraceNode>, TraceError> {
    parse_nodes(&read_source(reader, source)?, source)
}

/// Reads a pod list from any reader; `source` names the input in errors.
pub fn read_pods_from<R: Read>(reader: R, source: &str) -> Result<Vec<TracePod>, TraceError> {
    parse_pods(&read_source(reader, source)?, source)
}

/// The openb GPU node list built into the binary (1,213 nodes, 6,212 GPUs).
pub fn bundled_nodes() -> Result<Vec<TraceNode>, TraceError> {
    parse_nodes(
        BUNDLED_NODES.as_bytes(),
        "bundled:openb_node_list_gpu_node.csv",
    )
}

/// The default openb pod list built into the binary (8,152 pods): what `tessera simulate`
/// replays when given no trace.
pub fn bundled_pods() -> Result<Vec<TracePod>, TraceError> {
    parse_pods(
        BUNDLED_PODS.as_bytes(),
        "bundled:openb_pod_list_default.csv",
    )
}

/// The gpushare100 openb pod list built into the binary (8,152 pods, every GPU pod shares one
/// GPU).
pub fn bundled_gpushare100_pods() -> Result<Vec<TracePod>, TraceError> {
    parse_pods(
        BUNDLED_GPUSHARE100_PODS.as_bytes(),
        "bundled:openb_pod_list_gpushare100.csv",
    )
}

fn read_file(path: &Path) -> Result<Vec<u8>, TraceError> {
    let io_error = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    read_capped(file)
        .map_err(io_error)?
        .ok_or_else(|| too_large(&path.display().to_string()))
}

fn read_source<R: Read>(reader: R, source_name: &str) -> Result<Vec<u8>, TraceError> {
    read_capped(reader)
        .map_err(|source| TraceError::Read {
            source_name: source_name.to_owned(),
            source,
        })?
        .ok_or_else(|| too_large(source_name))
}

/// All of `reader`, or `None` when it holds more than [`MAX_FILE_BYTES`]. Reads at most one
/// byte past the limit, so an oversized input costs no more memory than the limit.
fn read_capped<R: Read>(reader: R) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let within_limit = u64::try_from(bytes.len()).is_ok_and(|len| len <= MAX_FILE_BYTES);
    Ok(within_limit.then_some(bytes))
}

fn too_large(source_name: &str) -> TraceError {
    TraceError::TooLarge {
        source_name: source_name.to_owned(),
        limit: MAX_FILE_BYTES,
    }
}

fn parse_nodes(bytes: &[u8], source_name: &str) -> Result<Vec<TraceNode>, TraceError> {
    parse_rows(bytes, source_name, NODE_COLUMNS, NODE_NAME, node_from_row)
}

fn parse_pods(bytes: &[u8], source_name: &str) -> Result<Vec<TracePod>, TraceError> {
    parse_rows(bytes, source_name, POD_COLUMNS, POD_NAME, pod_from_row)
}

fn node_from_row(row: &Row<'_>) -> Result<TraceNode, TraceError> {
    let name = row.name(NODE_NAME)?;
    let cpu_milli = row.whole(CPU_MILLI)?;
    let memory_mib = row.whole(MEMORY_MIB)?;
    let gpus: u32 = row.whole(NODE_GPU)?;
    if gpus > MAX_GPUS_PER_NODE {
        return Err(row.invalid(
            NODE_GPU,
            format!("is above the per-node limit of {MAX_GPUS_PER_NODE} GPUs"),
        ));
    }
    let model = row.text(NODE_MODEL);
    let model = match (gpus, model.is_empty()) {
        (0, true) => None,
        (0, false) => return Err(row.invalid(NODE_MODEL, "is set but the node has no GPU")),
        (_, true) => {
            return Err(row.invalid(NODE_MODEL, format!("is empty but the node has {gpus} GPUs")));
        }
        (_, false) => Some(model.to_owned()),
    };
    let instance_type = row
        .optional_text(INSTANCE_TYPE)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let capacity = match row.optional_text(CAPACITY_TYPE) {
        None | Some("") => None,
        Some(text) => Some(
            [
                CapacityType::OnDemand,
                CapacityType::Spot,
                CapacityType::Reserved,
            ]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| row.invalid(CAPACITY_TYPE, "is not one of spot, on-demand, reserved"))?,
        ),
    };
    let hourly_price = match row.optional_text(HOURLY_PRICE) {
        None | Some("") => None,
        Some(text) => {
            let annotation =
                BTreeMap::from([(HOURLY_PRICE_ANNOTATION.to_owned(), text.to_owned())]);
            node_price_override(&annotation).map_err(|_| {
                row.invalid(
                    HOURLY_PRICE,
                    "is not a price in US dollars per hour (a finite number ≥ 0)",
                )
            })?
        }
    };
    Ok(TraceNode {
        name,
        cpu_milli,
        memory_mib,
        gpus,
        model,
        instance_type,
        capacity,
        hourly_price,
    })
}

fn pod_from_row(row: &Row<'_>) -> Result<TracePod, TraceError> {
    let name = row.name(POD_NAME)?;
    let cpu_milli = row.whole(CPU_MILLI)?;
    let memory_mib = row.whole(MEMORY_MIB)?;
    let num_gpu: u32 = row.whole(NUM_GPU)?;
    let gpu_milli: u32 = row.whole(GPU_MILLI)?;
    check_pod_gpus(row, num_gpu, gpu_milli)?;
    let gpu_spec = row
        .optional_text(GPU_SPEC)
        .map(|spec| {
            spec.split('|')
                .map(str::trim)
                .filter(|model| !model.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let qos = match row.optional_text(QOS) {
        None | Some("") => None,
        Some(code) => Some(
            Qos::from_code(code)
                .ok_or_else(|| row.invalid(QOS, "is not one of LS, BE, Burstable, Guaranteed"))?,
        ),
    };
    let creation_time = row.optional_whole(CREATION_TIME)?;
    let deletion_time = row.optional_whole(DELETION_TIME)?;
    // Not kept (the FGD protocol ignores it), but a garbled value still means a garbled file.
    row.optional_whole::<u64>(SCHEDULED_TIME)?;
    Ok(TracePod {
        name,
        cpu_milli,
        memory_mib,
        num_gpu,
        gpu_milli,
        gpu_spec,
        qos,
        creation_time,
        deletion_time,
    })
}

/// The GPU request rules of the trace: a pod asks for no GPU at all, for whole GPUs, or for a
/// share of exactly one GPU.
fn check_pod_gpus(row: &Row<'_>, num_gpu: u32, gpu_milli: u32) -> Result<(), TraceError> {
    if num_gpu > MAX_GPUS_PER_NODE {
        return Err(row.invalid(
            NUM_GPU,
            format!("is above the per-node limit of {MAX_GPUS_PER_NODE} GPUs"),
        ));
    }
    if gpu_milli > WHOLE_GPU_MILLI {
        return Err(row.invalid(
            GPU_MILLI,
            format!("is above {WHOLE_GPU_MILLI} (one whole GPU)"),
        ));
    }
    if num_gpu > 0 && gpu_milli == 0 {
        return Err(row.invalid(
            GPU_MILLI,
            format!("asks for no GPU share, but num_gpu is {num_gpu}"),
        ));
    }
    if num_gpu == 0 && gpu_milli > 0 {
        return Err(row.invalid(
            NUM_GPU,
            format!("asks for no GPU, but gpu_milli is {gpu_milli}"),
        ));
    }
    if gpu_milli < WHOLE_GPU_MILLI && gpu_milli > 0 && num_gpu != 1 {
        return Err(row.invalid(
            NUM_GPU,
            format!("must be 1, because gpu_milli {gpu_milli} is a share of one GPU"),
        ));
    }
    Ok(())
}

/// Parses every data row with `parse_row`, enforcing the header, the bounds and unique names
/// in `key_column`.
fn parse_rows<T>(
    bytes: &[u8],
    source_name: &str,
    required: &[&'static str],
    key_column: &'static str,
    parse_row: impl Fn(&Row<'_>) -> Result<T, TraceError>,
) -> Result<Vec<T>, TraceError> {
    // Spreadsheets often save CSV with a UTF-8 byte order mark, which would otherwise become
    // part of the first column's name.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = ReaderBuilder::new().trim(Trim::All).from_reader(bytes);
    let csv_error = |source: csv::Error, fallback_line: u64| TraceError::Csv {
        source_name: source_name.to_owned(),
        line: source.position().map_or(fallback_line, csv::Position::line),
        source,
    };
    let header = reader.headers().map_err(|err| csv_error(err, 1))?.clone();
    let header = Header::new(header, source_name)?;
    for column in required {
        if header.index(column).is_none() {
            return Err(TraceError::MissingColumn {
                source_name: source_name.to_owned(),
                column,
            });
        }
    }

    let mut items = Vec::new();
    let mut first_lines: HashMap<String, u64> = HashMap::new();
    let mut record = StringRecord::new();
    let mut rows: u64 = 0;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|err| csv_error(err, reader.position().line()))?;
        if !more {
            break;
        }
        let line = record
            .position()
            .map_or_else(|| reader.position().line(), csv::Position::line);
        rows += 1;
        if rows > MAX_ROWS {
            return Err(TraceError::TooManyRows {
                source_name: source_name.to_owned(),
                line,
                limit: MAX_ROWS,
            });
        }
        let row = Row {
            source_name,
            line,
            header: &header,
            record: &record,
        };
        row.check_lengths()?;
        let item = parse_row(&row)?;
        let key = row.text(key_column);
        if let Some(&first_line) = first_lines.get(key) {
            return Err(TraceError::Duplicate {
                source_name: source_name.to_owned(),
                line,
                column: key_column,
                value: key.to_owned(),
                first_line,
            });
        }
        first_lines.insert(key.to_owned(), line);
        items.push(item);
    }
    if items.is_empty() {
        return Err(TraceError::Empty {
            source_name: source_name.to_owned(),
        });
    }
    Ok(items)
}

/// Column names of one input, checked for length and repeats.
struct Header {
    names: StringRecord,
}

impl Header {
    fn new(names: StringRecord, source_name: &str) -> Result<Self, TraceError> {
        let line = names.position().map_or(1, csv::Position::line);
        for (i, name) in names.iter().enumerate() {
            if name.len() > MAX_FIELD_BYTES {
                return Err(TraceError::FieldTooLong {
                    source_name: source_name.to_owned(),
                    line,
                    column: format!("#{}", i + 1),
                    bytes: name.len(),
                    limit: MAX_FIELD_BYTES,
                });
            }
            if !name.is_empty() && names.iter().take(i).any(|earlier| earlier == name) {
                return Err(TraceError::DuplicateColumn {
                    source_name: source_name.to_owned(),
                    column: name.to_owned(),
                });
            }
        }
        // An empty input gives no header at all, a blank one a single empty name. A header of
        // several empty names (`,,`) is not empty: it lacks the required columns.
        if names.len() <= 1 && names.iter().all(str::is_empty) {
            return Err(TraceError::Empty {
                source_name: source_name.to_owned(),
            });
        }
        Ok(Self { names })
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.names.iter().position(|name| name == column)
    }

    fn name(&self, index: usize) -> String {
        self.names
            .get(index)
            .map_or_else(|| format!("#{}", index + 1), str::to_owned)
    }
}

/// One data row with what is needed to read it and to name it in errors.
struct Row<'a> {
    source_name: &'a str,
    line: u64,
    header: &'a Header,
    record: &'a StringRecord,
}

impl Row<'_> {
    fn check_lengths(&self) -> Result<(), TraceError> {
        for (i, field) in self.record.iter().enumerate() {
            if field.len() > MAX_FIELD_BYTES {
                return Err(TraceError::FieldTooLong {
                    source_name: self.source_name.to_owned(),
                    line: self.line,
                    column: self.header.name(i),
                    bytes: field.len(),
                    limit: MAX_FIELD_BYTES,
                });
            }
        }
        Ok(())
    }

    /// The value of a column, or `None` when the header lacks it.
    fn optional_text(&self, column: &str) -> Option<&str> {
        self.header
            .index(column)
            .and_then(|index| self.record.get(index))
    }

    /// The value of a required column (checked present in the header before any row is read;
    /// the CSV reader rejects rows of the wrong width, so the field exists).
    fn text(&self, column: &str) -> &str {
        self.optional_text(column).unwrap_or_default()
    }

    fn name(&self, column: &str) -> Result<String, TraceError> {
        let name = self.text(column);
        if name.is_empty() {
            return Err(self.invalid(column, "is empty, but every row needs a name"));
        }
        Ok(name.to_owned())
    }

    fn whole<T: FromStr<Err = ParseIntError>>(&self, column: &str) -> Result<T, TraceError> {
        let value = self.text(column);
        parse_whole(value).map_err(|reason| self.invalid(column, reason))
    }

    /// A whole number from an optional column; an absent column or an empty value is `None`.
    fn optional_whole<T: FromStr<Err = ParseIntError>>(
        &self,
        column: &str,
    ) -> Result<Option<T>, TraceError> {
        match self.optional_text(column) {
            None | Some("") => Ok(None),
            Some(value) => parse_whole(value)
                .map(Some)
                .map_err(|reason| self.invalid(column, reason)),
        }
    }

    fn invalid(&self, column: &str, reason: impl Into<String>) -> TraceError {
        TraceError::InvalidField {
            source_name: self.source_name.to_owned(),
            line: self.line,
            column: column.to_owned(),
            value: self.text(column).to_owned(),
            reason: reason.into(),
        }
    }
}

fn parse_whole<T: FromStr<Err = ParseIntError>>(value: &str) -> Result<T, &'static str> {
    value
        .parse()
        .map_err(|err: ParseIntError| match err.kind() {
            IntErrorKind::Empty => "is empty, but a whole number is required",
            IntErrorKind::PosOverflow => "is too large",
            _ if value.strip_prefix('-').is_some_and(|digits| {
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            }) =>
            {
                "is negative"
            }
            _ => "is not a whole number",
        })
}
