//! The Spot Instance Advisor table: interruption band and savings per region and instance type.
//!
//! The built-in table is `data/pricing/spot_advisor_gpu.csv`, a Linux-only, GPU-family-only
//! trim of AWS's public Spot Advisor feed (June 2025 snapshot; provenance and trim in
//! `data/pricing/README.md`).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::band::InterruptionBand;
use super::error::MarketError;
use super::fields::{self, Rule};

/// Name used in errors for the built-in table.
const BUILTIN_FILE: &str = "data/pricing/spot_advisor_gpu.csv";
/// The built-in table.
const BUILTIN_CSV: &str = include_str!("../../data/pricing/spot_advisor_gpu.csv");

/// Interruption band and spot savings, per region and instance type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpotAdvisor {
    /// region → instance type → (band, savings %); nested so a lookup needs no allocation.
    by_region: BTreeMap<String, BTreeMap<String, (InterruptionBand, f64)>>,
}

impl SpotAdvisor {
    /// The table compiled into the binary.
    pub fn builtin() -> Result<Self, MarketError> {
        Self::from_csv_reader(BUILTIN_CSV.as_bytes(), BUILTIN_FILE)
    }

    /// Reads a table with columns `region,instance_type,band,savings_pct`, where `band` is the
    /// feed's `r` index (0..=4) or its label (`<5%` … `>20%`); `source` names the file in errors.
    pub fn from_csv_reader<R: Read>(reader: R, source: &str) -> Result<Self, MarketError> {
        let mut reader = fields::reader(reader);
        let header = fields::header(&mut reader, source)?;
        let region_col = header.column("region")?;
        let type_col = header.column("instance_type")?;
        let band_col = header.column("band")?;
        let savings_col = header.column("savings_pct")?;
        let mut by_region: BTreeMap<String, BTreeMap<String, (InterruptionBand, f64)>> =
            BTreeMap::new();
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| fields::csv_error(source, &e))?;
            let row = header.row(&record)?;
            let region = row.required_text(region_col)?;
            let instance_type = row.required_text(type_col)?;
            let band_text = row.required_text(band_col)?;
            let band = band_text
                .parse::<u8>()
                .ok()
                .and_then(InterruptionBand::from_index)
                .or_else(|| InterruptionBand::from_label(band_text))
                .ok_or_else(|| row.unknown_band(band_col, band_text))?;
            let savings = row.required_number(savings_col, Rule::Savings)?;
            let key = (region.to_owned(), instance_type.to_owned());
            if let Some(&first_line) = seen.get(&key) {
                return Err(MarketError::DuplicateRow {
                    file: header.file().to_owned(),
                    line: row.line(),
                    first_line,
                    region: key.0,
                    instance_type: key.1,
                });
            }
            seen.insert(key, row.line());
            by_region
                .entry(region.to_owned())
                .or_default()
                .insert(instance_type.to_owned(), (band, savings));
        }
        Ok(Self { by_region })
    }

    /// The band and the savings % over on-demand of `instance_type` in `region`, if listed.
    pub fn band(&self, region: &str, instance_type: &str) -> Option<(InterruptionBand, f64)> {
        self.by_region.get(region)?.get(instance_type).copied()
    }

    /// Number of (region, instance type) entries.
    pub fn len(&self) -> usize {
        self.by_region.values().map(BTreeMap::len).sum()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.by_region.is_empty()
    }
}

#[cfg(test)]
mod tests;
