//! The price of one GPU-hour of a workload's GPU: the extender's own figure when it runs,
//! else the built-in catalog, else the fallback price.

use serde::Serialize;

use crate::market::{FALLBACK_USD_PER_GPU_HOUR, PriceCatalog};

/// Where a price came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PriceSource {
    /// `tessera_extender_allocation_cost_dollars_per_hour` divided by the device's fraction:
    /// the node's own price (instance type, spot or on-demand, price annotation).
    Extender,
    /// The cheapest on-demand per-GPU price of the model in the built-in catalog.
    #[serde(rename_all = "camelCase")]
    Catalog {
        /// The catalog row's instance type.
        instance_type: String,
        /// Its region.
        region: String,
    },
    /// No figure for the model: OpenCost's default GPU price.
    Fallback,
}

impl PriceSource {
    /// Short text for the table.
    pub fn label(&self) -> String {
        match self {
            PriceSource::Extender => "extender".to_owned(),
            PriceSource::Catalog { instance_type, .. } => format!("catalog {instance_type}"),
            PriceSource::Fallback => "fallback".to_owned(),
        }
    }
}

/// Dollars per GPU-hour and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuPrice {
    /// US dollars per GPU-hour.
    pub usd_per_gpu_hour: f64,
    /// Where from.
    pub source: PriceSource,
}

/// Memory sizes within this share of each other are the same GPU (catalogs round).
const MEMORY_TOLERANCE: f64 = 0.15;

/// The catalog price of a GPU named `gpu_model` by NVML (`NVIDIA H100 80GB HBM3`): the lowest
/// on-demand per-GPU price among rows of whole GPUs whose model tokens (`h100`, `80gb`; the
/// `nvidia`/`tesla` prefix ignored) all appear in the name, and whose per-GPU memory, when the
/// row gives it, is within 15 % of `gpu_memory_bytes`. Fallback price when no row matches.
pub fn catalog_price(
    catalog: &PriceCatalog,
    gpu_model: &str,
    gpu_memory_bytes: Option<u64>,
) -> GpuPrice {
    let lower = gpu_model.to_ascii_lowercase();
    let name: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|t| !t.is_empty())
        .collect();
    let best = catalog
        .iter()
        .filter(|row| row.gpus >= 1.0)
        .filter(|row| {
            let model = row.gpu_model.to_ascii_lowercase();
            let tokens: Vec<&str> = model
                .split('-')
                .filter(|t| !t.is_empty() && *t != "nvidia" && *t != "tesla")
                .collect();
            !tokens.is_empty() && tokens.iter().all(|t| name.contains(t))
        })
        .filter(|row| match (row.gpu_mem_mib_each, gpu_memory_bytes) {
            (Some(mib), Some(bytes)) if bytes > 0 => {
                let row_bytes = f64::from(mib) * 1024.0 * 1024.0;
                (row_bytes - bytes as f64).abs() <= MEMORY_TOLERANCE * bytes as f64
            }
            _ => true,
        })
        .min_by(|a, b| a.od_usd_per_gpu_hr.total_cmp(&b.od_usd_per_gpu_hr));
    match best {
        Some(row) => GpuPrice {
            usd_per_gpu_hour: row.od_usd_per_gpu_hr,
            source: PriceSource::Catalog {
                instance_type: row.instance_type.clone(),
                region: row.region.clone(),
            },
        },
        None => GpuPrice {
            usd_per_gpu_hour: FALLBACK_USD_PER_GPU_HOUR,
            source: PriceSource::Fallback,
        },
    }
}
