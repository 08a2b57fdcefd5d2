//! The FGD authors' published per-seed results (`analysis_allo_discrete.csv` of
//! `hkust-adsl/kubernetes-scheduler-simulator`, bundled in
//! `benches/traces/alibaba-openb/fgd-published/`), read so a run can be printed next to them.
//!
//! Columns: `workload, sc_policy, tune, seed, total_gpus`, then `0` … `130` — the arrived
//! workload in % of cluster GPU capacity — each cell the allocated GPU % of capacity. The
//! paper's figure is `100 − cell`, median over seeds (placement-benchmark.md §3.4).

use std::collections::BTreeMap;

use csv::ReaderBuilder;

use super::curves::median;

/// Largest file accepted (the published file is 0.7 MiB).
pub const MAX_PUBLISHED_BYTES: usize = 16 * 1024 * 1024;
/// Most rows accepted (the published file has 1,020).
pub const MAX_PUBLISHED_ROWS: usize = 100_000;
/// The highest arrival column the file has.
pub const MAX_ARRIVED_PCT: u32 = 130;

/// Why the published results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PublishedError {
    /// Larger than [`MAX_PUBLISHED_BYTES`].
    #[error("{source_name}: {bytes} bytes is more than the {MAX_PUBLISHED_BYTES} accepted")]
    TooLarge {
        /// Name of the input.
        source_name: String,
        /// Its size.
        bytes: usize,
    },
    /// More rows than [`MAX_PUBLISHED_ROWS`].
    #[error("{source_name}: more than {MAX_PUBLISHED_ROWS} rows")]
    TooManyRows {
        /// Name of the input.
        source_name: String,
    },
    /// Not CSV, or a row of the wrong width.
    #[error("{source_name} line {line}: malformed CSV: {source}")]
    Csv {
        /// Name of the input.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// The parser's error.
        source: csv::Error,
    },
    /// The header lacks a column the read-out needs.
    #[error("{source_name} line 1: required column {column} is missing from the header")]
    MissingColumn {
        /// Name of the input.
        source_name: String,
        /// The missing column.
        column: String,
    },
    /// A cell that is not a number where one is needed.
    #[error("{source_name} line {line}, column {column}: {value:?} is not a number")]
    BadNumber {
        /// Name of the input.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
    },
    /// No row at all.
    #[error("{source_name}: no rows")]
    Empty {
        /// Name of the input.
        source_name: String,
    },
}

/// One (workload, policy, tune): the unallocated GPU % of each seed at one arrival bin.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedRuns {
    /// Seed → unallocated GPU %.
    pub by_seed: BTreeMap<u64, f64>,
}

impl PublishedRuns {
    /// Median over the seeds (the paper's line-plot figure).
    pub fn median(&self) -> Option<f64> {
        median(&self.by_seed.values().copied().collect::<Vec<_>>())
    }
}

/// Published results read at one arrival bin, keyed by (workload, policy name in tessera's
/// spelling, tune in hundredths).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    runs: BTreeMap<(String, String, u32), PublishedRuns>,
}

/// tessera's name for a published `sc_policy` (`06-FGD` → `fgd`), `None` for one it has not.
pub fn policy_name(sc_policy: &str) -> Option<&'static str> {
    let bare = sc_policy
        .split_once('-')
        .map_or(sc_policy, |(_, rest)| rest)
        .to_ascii_lowercase();
    Some(match bare.as_str() {
        "random" => "random",
        "dotprod" => "dotprod",
        "gpuclustering" => "clustering",
        "gpupacking" => "packing",
        "bestfit" => "bestfit",
        "fgd" => "fgd",
        _ => return None,
    })
}

/// Tune ratio in hundredths (1.3 → 130), the key the results are stored under.
pub fn tune_key(tune: f64) -> u32 {
    (tune * 100.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

impl Published {
    /// Reads `text` (the CSV) at arrival bin `at_arrived_pct`; `source_name` names it in
    /// errors. Rows of policies tessera does not run are skipped; empty cells (bins a run
    /// never reached) are left out of that run.
    pub fn parse(
        text: &[u8],
        source_name: &str,
        at_arrived_pct: u32,
    ) -> Result<Published, PublishedError> {
        if text.len() > MAX_PUBLISHED_BYTES {
            return Err(PublishedError::TooLarge {
                source_name: source_name.to_owned(),
                bytes: text.len(),
            });
        }
        let mut reader = ReaderBuilder::new().flexible(false).from_reader(text);
        let csv_error = |source: csv::Error, line: u64| PublishedError::Csv {
            source_name: source_name.to_owned(),
            line,
            source,
        };
        let header = reader.headers().map_err(|e| csv_error(e, 1))?.clone();
        let column = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                PublishedError::MissingColumn {
                    source_name: source_name.to_owned(),
                    column: name.to_owned(),
                }
            })
        };
        let at = at_arrived_pct.to_string();
        let (workload, policy, tune, seed, value) = (
            column("workload")?,
            column("sc_policy")?,
            column("tune")?,
            column("seed")?,
            column(&at)?,
        );
        let mut out = Published::default();
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            if i >= MAX_PUBLISHED_ROWS {
                return Err(PublishedError::TooManyRows {
                    source_name: source_name.to_owned(),
                });
            }
            let record = record.map_err(|e| csv_error(e, line))?;
            let cell = |index: usize| record.get(index).unwrap_or("").trim();
            let number = |index: usize, name: &str| {
                cell(index)
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| PublishedError::BadNumber {
                        source_name: source_name.to_owned(),
                        line,
                        column: name.to_owned(),
                        value: cell(index).to_owned(),
                    })
            };
            let Some(policy) = policy_name(cell(policy)) else {
                continue;
            };
            let tune = tune_key(number(tune, "tune")?);
            let seed = number(seed, "seed")?;
            if cell(value).is_empty() {
                continue;
            }
            let allocated = number(value, &at)?;
            let stem = cell(workload);
            let name = stem.strip_prefix("openb_pod_list_").unwrap_or(stem);
            out.runs
                .entry((name.to_owned(), policy.to_owned(), tune))
                .or_insert_with(|| PublishedRuns {
                    by_seed: BTreeMap::new(),
                })
                .by_seed
                .insert(seed.max(0.0) as u64, 100.0 - allocated);
        }
        if out.runs.is_empty() {
            return Err(PublishedError::Empty {
                source_name: source_name.to_owned(),
            });
        }
        Ok(out)
    }

    /// The published runs of `workload` (bare name, `default`, `gpuspec25`, …), `policy`
    /// (tessera's name) and `tune`.
    pub fn get(&self, workload: &str, policy: &str, tune: f64) -> Option<&PublishedRuns> {
        self.runs
            .get(&(workload.to_owned(), policy.to_owned(), tune_key(tune)))
    }

    /// The median published unallocated GPU % of `workload`, `policy`, `tune`.
    pub fn median(&self, workload: &str, policy: &str, tune: f64) -> Option<f64> {
        self.get(workload, policy, tune)?.median()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLED: &[u8] = include_bytes!(
        "../../benches/traces/alibaba-openb/fgd-published/analysis_allo_discrete.csv"
    );

    #[test]
    fn the_bundled_file_gives_the_papers_default_figures() {
        let p = Published::parse(BUNDLED, "bundled", 100).unwrap();
        // placement-benchmark.md §3.4 / shared/data/README.md: FGD 4.77, BestFit 7.09,
        // Packing 8.195, Random 13.75.
        for (policy, want) in [
            ("fgd", 4.77),
            ("bestfit", 7.09),
            ("packing", 8.195),
            ("random", 13.75),
        ] {
            let got = p.median("default", policy, 1.3).unwrap();
            assert!((got - want).abs() < 1e-9, "{policy}: {got}");
        }
        assert_eq!(p.get("gpuspec25", "fgd", 1.3).unwrap().by_seed.len(), 10);
        assert!(p.median("default", "tessera", 1.3).is_none());
        assert!(p.median("default", "fgd", 1.0).is_none(), "other tune");
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let missing = Published::parse(b"workload,sc_policy,tune,seed\n", "x.csv", 100)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("column 100 is missing"), "{missing}");
        let bad = Published::parse(
            b"workload,sc_policy,tune,seed,100\nopenb_pod_list_default,06-FGD,1.3,42,lots\n",
            "x.csv",
            100,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("x.csv line 2, column 100: \"lots\""), "{bad}");
        let none = Published::parse(b"workload,sc_policy,tune,seed,100\n", "x.csv", 100)
            .unwrap_err()
            .to_string();
        assert!(none.contains("no rows"), "{none}");
    }

    #[test]
    fn policy_names_map_to_tesseras() {
        assert_eq!(policy_name("03-GpuClustering"), Some("clustering"));
        assert_eq!(policy_name("04-GpuPacking"), Some("packing"));
        assert_eq!(policy_name("02-DotProd"), Some("dotprod"));
        assert_eq!(policy_name("07-Other"), None);
    }
}
