//! GPU instance prices: the built-in catalog, user overrides and the fallback price.
//!
//! The catalog is `data/pricing/gpu_price_catalog.csv` (provenance in
//! `data/pricing/README.md`), compiled into the binary so a node can be priced without network
//! access. Columns are found by header name; a user override file uses the same column names.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::band::InterruptionBand;
use super::error::MarketError;
use super::fields::{self, Column, Header, Row, Rule};

/// Price of one GPU-hour for a node with no catalog entry and no price annotation.
///
/// OpenCost's default `"GPU": "0.95"` ("based on GCP us-central1"), `opencost/opencost
/// configs/default.json`; its `aws.json` and `azure.json` use the same value. OpenCost has no
/// spot GPU price, so this value is also used for spot nodes (see `placement-benchmark.md` §5.1).
pub const FALLBACK_USD_PER_GPU_HOUR: f64 = 0.95;

/// Name used in errors for the built-in catalog.
const BUILTIN_FILE: &str = "data/pricing/gpu_price_catalog.csv";
/// The built-in catalog.
const BUILTIN_CSV: &str = include_str!("../../data/pricing/gpu_price_catalog.csv");

/// Relative disagreement allowed between a per-GPU price and whole-instance price / gpus.
const PRICE_REL_TOLERANCE: f64 = 0.01;
/// Absolute disagreement allowed, for the catalog's prices rounded to 4 decimals.
const PRICE_ABS_TOLERANCE: f64 = 1e-4;

/// One instance type's price in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePrice {
    /// `aws`, `gcp` or `azure` (free text in override files).
    pub cloud: String,
    /// Region the price is for, as written in the file.
    pub region: String,
    /// Instance type, matched against `node.kubernetes.io/instance-type`.
    pub instance_type: String,
    /// GPU model (for example `a100`, `l4`).
    pub gpu_model: String,
    /// GPUs per instance; fractional for partitioned offerings (AWS `g6f.*`, Azure
    /// `NV*ads_A10_v5`).
    pub gpus: f64,
    /// Memory per GPU in MiB, when the source gives it.
    pub gpu_mem_mib_each: Option<u32>,
    /// On-demand price of the whole instance, US dollars per hour.
    pub od_usd_hr: f64,
    /// On-demand price per whole GPU, US dollars per hour.
    pub od_usd_per_gpu_hr: f64,
    /// Spot price of the whole instance (an estimate for AWS rows), when known.
    pub spot_usd_hr: Option<f64>,
    /// Spot price per whole GPU, when known.
    pub spot_usd_per_gpu_hr: Option<f64>,
    /// Spot Advisor band for this row's region, when known.
    pub interruption_band: Option<InterruptionBand>,
    /// Spot savings over on-demand in percent, when known.
    pub spot_savings_pct: Option<f64>,
    /// Where the on-demand price came from.
    pub price_source: String,
    /// Where the spot price came from.
    pub spot_source: String,
}

/// A price table keyed by instance type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceCatalog {
    /// Rows per instance type, in preference order for the any-region fallback.
    by_type: BTreeMap<String, Vec<InstancePrice>>,
}

impl PriceCatalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Result<Self, MarketError> {
        Self::from_csv_reader(BUILTIN_CSV.as_bytes(), BUILTIN_FILE)
    }

    /// Reads a catalog from CSV; `source` names the file in errors.
    ///
    /// Needed columns: `cloud`, `region`, `instance_type`, `gpu_model`, `gpus`,
    /// `gpu_mem_mib_each`, `od_usd_hr`, `od_usd_per_gpu_hr`, `spot_usd_hr_est`,
    /// `spot_usd_per_gpu_hr_est`, `spot_interruption_band`, `spot_savings_pct`, `price_source`,
    /// `spot_source`; others are ignored. Of each price pair (whole instance, per GPU) one may be
    /// left empty and is derived from the other; when both are given they must agree.
    pub fn from_csv_reader<R: Read>(reader: R, source: &str) -> Result<Self, MarketError> {
        let mut reader = fields::reader(reader);
        let header = fields::header(&mut reader, source)?;
        let columns = Columns::find(&header)?;
        let mut by_type: BTreeMap<String, Vec<InstancePrice>> = BTreeMap::new();
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| fields::csv_error(source, &e))?;
            let row = header.row(&record)?;
            let price = columns.parse(&row)?;
            let key = (price.region.clone(), price.instance_type.clone());
            if let Some(&first_line) = seen.get(&key) {
                return Err(MarketError::DuplicateRow {
                    file: header.file().to_owned(),
                    line: row.line(),
                    first_line,
                    region: price.region,
                    instance_type: price.instance_type,
                });
            }
            seen.insert(key, row.line());
            by_type
                .entry(price.instance_type.clone())
                .or_default()
                .push(price);
        }
        Ok(Self { by_type })
    }

    /// The price of `instance_type`: the row for `region` if there is one, else the first row
    /// of that type in preference order (override rows first, then file order).
    pub fn lookup(&self, instance_type: &str, region: Option<&str>) -> Option<&InstancePrice> {
        let rows = self.by_type.get(instance_type)?;
        region
            .and_then(|region| rows.iter().find(|row| row.region == region))
            .or_else(|| rows.first())
    }

    /// This catalog with `overrides` applied: an override row replaces the row with the same
    /// region and instance type, or is added. Override rows come first in the any-region
    /// fallback, so a user's own prices win over the built-in ones for other regions too.
    pub fn merged_with(mut self, overrides: PriceCatalog) -> Self {
        for (instance_type, mut rows) in overrides.by_type {
            if let Some(base) = self.by_type.remove(&instance_type) {
                let kept: Vec<InstancePrice> = base
                    .into_iter()
                    .filter(|b| !rows.iter().any(|o| o.region == b.region))
                    .collect();
                rows.extend(kept);
            }
            self.by_type.insert(instance_type, rows);
        }
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.by_type.values().map(Vec::len).sum()
    }

    /// Whether the catalog has no rows.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// All rows, by instance type, then in preference order.
    pub fn iter(&self) -> impl Iterator<Item = &InstancePrice> {
        self.by_type.values().flatten()
    }
}

/// The needed columns of a catalog file.
struct Columns {
    cloud: Column,
    region: Column,
    instance_type: Column,
    gpu_model: Column,
    gpus: Column,
    gpu_mem_mib_each: Column,
    od_usd_hr: Column,
    od_usd_per_gpu_hr: Column,
    spot_usd_hr: Column,
    spot_usd_per_gpu_hr: Column,
    band: Column,
    savings: Column,
    price_source: Column,
    spot_source: Column,
}

impl Columns {
    fn find(header: &Header) -> Result<Self, MarketError> {
        Ok(Self {
            cloud: header.column("cloud")?,
            region: header.column("region")?,
            instance_type: header.column("instance_type")?,
            gpu_model: header.column("gpu_model")?,
            gpus: header.column("gpus")?,
            gpu_mem_mib_each: header.column("gpu_mem_mib_each")?,
            od_usd_hr: header.column("od_usd_hr")?,
            od_usd_per_gpu_hr: header.column("od_usd_per_gpu_hr")?,
            spot_usd_hr: header.column("spot_usd_hr_est")?,
            spot_usd_per_gpu_hr: header.column("spot_usd_per_gpu_hr_est")?,
            band: header.column("spot_interruption_band")?,
            savings: header.column("spot_savings_pct")?,
            price_source: header.column("price_source")?,
            spot_source: header.column("spot_source")?,
        })
    }

    fn parse(&self, row: &Row<'_>) -> Result<InstancePrice, MarketError> {
        let gpus = row.required_number(self.gpus, Rule::Positive)?;
        let od = price_pair(row, self.od_usd_hr, self.od_usd_per_gpu_hr, gpus)?
            .ok_or_else(|| row.empty(self.od_usd_hr))?;
        let spot = price_pair(row, self.spot_usd_hr, self.spot_usd_per_gpu_hr, gpus)?;
        let band_text = row.text(self.band)?;
        let interruption_band = if band_text.is_empty() {
            None
        } else {
            Some(
                InterruptionBand::from_label(band_text)
                    .ok_or_else(|| row.unknown_band(self.band, band_text))?,
            )
        };
        Ok(InstancePrice {
            cloud: row.required_text(self.cloud)?.to_owned(),
            region: row.required_text(self.region)?.to_owned(),
            instance_type: row.required_text(self.instance_type)?.to_owned(),
            gpu_model: row.text(self.gpu_model)?.to_owned(),
            gpus,
            gpu_mem_mib_each: row.whole_number(self.gpu_mem_mib_each)?,
            od_usd_hr: od.0,
            od_usd_per_gpu_hr: od.1,
            spot_usd_hr: spot.map(|s| s.0),
            spot_usd_per_gpu_hr: spot.map(|s| s.1),
            interruption_band,
            spot_savings_pct: row.number(self.savings, Rule::Savings)?,
            price_source: row.text(self.price_source)?.to_owned(),
            spot_source: row.text(self.spot_source)?.to_owned(),
        })
    }
}

/// A (whole instance, per GPU) price pair; either may be empty and is then derived from the
/// other, so an override file can give just one. `None` when both are empty.
fn price_pair(
    row: &Row<'_>,
    whole: Column,
    per_gpu: Column,
    gpus: f64,
) -> Result<Option<(f64, f64)>, MarketError> {
    let whole_value = row.number(whole, Rule::NonNegative)?;
    let per_gpu_value = row.number(per_gpu, Rule::NonNegative)?;
    // A derived price can overflow (a huge price over a tiny GPU fraction); reject it rather
    // than carry `inf` into scoring.
    let pair = match (whole_value, per_gpu_value) {
        (None, None) => return Ok(None),
        (Some(w), None) => {
            let p = w / gpus;
            if !p.is_finite() {
                return Err(row.invalid(whole, row.text(whole)?, "divided by gpus is not finite"));
            }
            (w, p)
        }
        (None, Some(p)) => {
            let w = p * gpus;
            if !w.is_finite() {
                return Err(row.invalid(per_gpu, row.text(per_gpu)?, "times gpus is not finite"));
            }
            (w, p)
        }
        (Some(w), Some(p)) => {
            let expected = w / gpus;
            let tolerance = (PRICE_REL_TOLERANCE * expected).max(PRICE_ABS_TOLERANCE);
            if (p - expected).abs() > tolerance {
                return Err(row.inconsistent(per_gpu, p, expected));
            }
            (w, p)
        }
    };
    Ok(Some(pair))
}

#[cfg(test)]
mod tests;
