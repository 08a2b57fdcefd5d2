//! The MIG-capable GPU products tessera knows the profile tables of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A MIG-capable GPU product, as distinguished by NVIDIA's MIG User Guide
/// ("Supported MIG Profiles"): products with the same silicon but different memory have
/// different profile names, so they are different products here.
// Variant names keep NVIDIA's own spelling (A100-40GB, H200-141GB) so they read like the guide.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GpuProduct {
    /// A100 40GB (SXM4 or PCIe).
    #[serde(rename = "A100-40GB")]
    A100_40GB,
    /// A100 80GB (SXM4 or PCIe).
    #[serde(rename = "A100-80GB")]
    A100_80GB,
    /// H100 80GB (SXM5 or PCIe).
    #[serde(rename = "H100-80GB")]
    H100_80GB,
    /// H100 94GB (H100 NVL, or the 94GB SXM5).
    #[serde(rename = "H100-94GB")]
    H100_94GB,
    /// H200 141GB (SXM5 or NVL).
    #[serde(rename = "H200-141GB")]
    H200_141GB,
    /// A30 24GB.
    #[serde(rename = "A30-24GB")]
    A30_24GB,
    /// B200, listed by the guide as the "B200 180 GB product".
    #[serde(rename = "B200-180GB")]
    B200,
}

impl GpuProduct {
    /// Every product in the catalog, in declaration order.
    pub const ALL: [GpuProduct; 7] = [
        GpuProduct::A100_40GB,
        GpuProduct::A100_80GB,
        GpuProduct::H100_80GB,
        GpuProduct::H100_94GB,
        GpuProduct::H200_141GB,
        GpuProduct::A30_24GB,
        GpuProduct::B200,
    ];

    /// Stable short name, also used as the serde name.
    pub fn name(self) -> &'static str {
        match self {
            GpuProduct::A100_40GB => "A100-40GB",
            GpuProduct::A100_80GB => "A100-80GB",
            GpuProduct::H100_80GB => "H100-80GB",
            GpuProduct::H100_94GB => "H100-94GB",
            GpuProduct::H200_141GB => "H200-141GB",
            GpuProduct::A30_24GB => "A30-24GB",
            GpuProduct::B200 => "B200-180GB",
        }
    }

    /// The product whose [`GpuProduct::name`] is `name` (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Self> {
        GpuProduct::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Recognises an NVML / `nvidia-smi` product name such as `NVIDIA A100-SXM4-40GB`,
    /// `NVIDIA H100 80GB HBM3`, `NVIDIA H100 NVL`, `NVIDIA H200`, `NVIDIA A30` or `NVIDIA B200`.
    ///
    /// Matching is by whole tokens (split on spaces, `-` and `_`, case-insensitive), so
    /// `NVIDIA GB200` and `NVIDIA GH200 480GB` are *not* taken for a B200 or an H200: their
    /// memory sizes, and so their profile names, differ. Names that do not say which memory
    /// variant they are (a bare `NVIDIA A100`, or an H100 with 96GB as on GH200) give `None`
    /// rather than a guess.
    pub fn from_product_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let tokens: Vec<&str> = upper
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|t| !t.is_empty())
            .collect();
        let has = |t: &str| tokens.contains(&t);
        if has("A100") {
            if has("80GB") {
                Some(GpuProduct::A100_80GB)
            } else if has("40GB") {
                Some(GpuProduct::A100_40GB)
            } else {
                None
            }
        } else if has("H100") {
            if has("NVL") || has("94GB") {
                Some(GpuProduct::H100_94GB)
            } else if has("80GB") || (has("PCIE") && !has("96GB")) {
                // "NVIDIA H100 PCIe" is the 80GB PCIe card; it carries no size token.
                Some(GpuProduct::H100_80GB)
            } else {
                None
            }
        } else if has("H200") {
            Some(GpuProduct::H200_141GB)
        } else if has("A30") {
            Some(GpuProduct::A30_24GB)
        } else if has("B200") {
            Some(GpuProduct::B200)
        } else {
            None
        }
    }

    /// Number of memory slices a GPU instance placement is expressed in: 8, except on A30
    /// whose profiles come in quarters (guide: "Fraction of Memory" 1/4, 2/4, Full).
    pub fn total_memory_slices(self) -> u8 {
        match self {
            GpuProduct::A30_24GB => 4,
            _ => 8,
        }
    }

    /// Number of compute (SM) slices: 7 on A100/H100/H200/B200 ("Fraction of SMs" in
    /// sevenths), 4 on A30 (quarters).
    pub fn total_compute_slices(self) -> u8 {
        match self {
            GpuProduct::A30_24GB => 4,
            _ => 7,
        }
    }
}

impl fmt::Display for GpuProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
