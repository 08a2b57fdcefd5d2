//! The profile tables: every GPU-instance profile NVIDIA's MIG User Guide lists for each
//! product, with its valid placements.
//!
//! # Sources
//!
//! - **[guide]** NVIDIA Multi-Instance GPU User Guide, "Supported MIG Profiles"
//!   (<https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html>,
//!   read in its v580 and later revisions): profile names, fraction of memory and SMs, NVDEC
//!   and copy-engine counts, number of instances per GPU.
//! - **[guide-lgipp]** the same guide, "Getting Started with MIG → List GPU Instance
//!   Profiles": `nvidia-smi mig -lgip` and `nvidia-smi mig -lgipp` on an A100-SXM4-40GB
//!   (profile IDs 19/20/15/14/9/5/0, memory in GiB, placements), and the `-lgi` examples
//!   showing 3g instances at `0:4` and `4:4`.
//! - **[h100-smi]** a public `nvidia-smi mig -lgip` / `-lgipp` transcript on an
//!   "NVIDIA H100 80GB HBM3": same IDs and placement list as [guide-lgipp].
//! - **[nvl-smi]** a public `-lgip` / `-lgipp` transcript on an "NVIDIA H100 NVL"
//!   (driver 560.35.03, Azure NC40ads H100 v5): same IDs and placement list; `nvidia-smi`
//!   there reports the instances as 11008, 22144 and 47488 MiB, which is how the two-decimal
//!   GiB column is turned into MiB below (x.62 = x.625, x.38 = x.375, x.12 = x.125).
//! - **[h200-smi]** `nvidia-smi mig -lgip` on H200 quoted in NVIDIA/mig-parted issue #120.
//! - **[b200-smi]** `nvidia-smi mig -lgip` on B200 quoted in NVIDIA/mig-parted PR #166
//!   (1g.23gb at 22.00 GiB) and PR #187 (1g.23gb at 20.50 GiB, later driver); both show
//!   1g.45gb and 2g.45gb at 44.25 GiB. Only the first four profiles were visible there.
//! - **[a100-80-smi]** a public `nvidia-smi mig -lgip` / `-lgi` transcript on an
//!   "NVIDIA A100-SXM4-80GB" (driver 550.54.14): IDs 19/20/15/14/9/5/0, 9.50 / 19.50 /
//!   39.25 / 78.75 GiB, and `4g.40gb` at `0:4`, `3g.40gb` at `4:4`.
//! - **[a30-smi]** a public `nvidia-smi mig -lgip` / `-lgipp` transcript on an A30:
//!   IDs 14/21/5/6/0, placements `{0,1,2,3}:1`, `{0,2}:2`, `{0}:4`.
//! - **[mig-parted]** NVIDIA/mig-parted `deployments/systemd/config-default.yaml`: the
//!   `all-<profile>` configs give the same per-GPU instance counts as [guide] for every
//!   product here (e.g. `all-1g.10gb` is 7 on H100-80GB/A100-80GB and 4 on A100-40GB), and
//!   `all-balanced` the balanced mixes (2 × 1g + 1 × 2g + 1 × 3g; A30: 2 × 1g + 1 × 2g).
//!
//! # What could not be verified
//!
//! - Placements (`-lgipp`) were seen for A100-40GB, H100-80GB, H100 NVL and A30. H200 and
//!   B200 have the same 7-compute / 8-memory slice geometry, the same instance counts in
//!   [guide] and [mig-parted], and the same profile IDs where [h200-smi]/[b200-smi] show
//!   them, so the H100 placement lists are used for them, unverified. A100-80GB uses the
//!   A100-40GB list (see its table). NVIDIA's go-nvml mock tables
//!   (`pkg/nvml/mock/shared/gpus/*.go`) were read but not used: they are simplified (e.g.
//!   `3g` placements of size 3, `1g.10gb` of size 1 on A100-40GB) and contradict `-lgipp`.
//! - Profile IDs and MiB of B200's 3g/4g/7g were not seen in any primary output: `None`.
//!   One third-party note quotes 89.00 GiB for 3g.90gb/4g.90gb and 178.50 GiB for 7g.180gb;
//!   it is not adopted, so demands compare against the smaller nominal size.
//! - `memory_mib` is what `nvidia-smi mig -lgip` reported in the cited transcript; it moves
//!   with the driver (B200 1g.23gb: 22.00 → 20.50 GiB; H100 1g.10gb 9.75 or 9.62 GiB).
//! - [guide]'s A100 table gives `1g.10gb` a memory fraction of 1/8, but its name (10 of 40 GB)
//!   and [guide-lgipp] (profile 15 at `{0,2,4,6}:2`) say two slices; two slices are used.
//! - [guide]'s B200 table gives 1 NVDEC and 3 copy engines for 2g.45gb while [b200-smi]
//!   shows 2 and 4; the guide's numbers are kept.

use serde::{Deserialize, Serialize};

use super::GpuProduct;

/// Where a GPU instance sits: memory slices `start..start + size`, as in NVML's
/// `nvmlGpuInstancePlacement_t` and `nvidia-smi mig -lgipp` (`{starts}:size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Placement {
    /// Index of the first memory slice.
    pub start: u8,
    /// Number of memory slices occupied.
    pub size: u8,
}

impl Placement {
    /// A placement at `start` spanning `size` memory slices.
    pub const fn new(start: u8, size: u8) -> Self {
        Placement { start, size }
    }

    /// One past the last memory slice, widened so it cannot overflow.
    pub fn end(self) -> u16 {
        u16::from(self.start) + u16::from(self.size)
    }

    /// Whether the two placements share a memory slice.
    pub fn overlaps(self, other: Placement) -> bool {
        u16::from(self.start) < other.end() && u16::from(other.start) < self.end()
    }
}

/// One GPU-instance profile of one product, as listed in the MIG User Guide.
#[derive(Debug, Clone, Copy, Eq, Serialize)]
pub struct MigProfile {
    /// Short profile name as NVML reports it without the `MIG ` prefix, e.g. `1g.10gb+me`.
    pub name: &'static str,
    /// NVML GPU-instance profile ID (`nvidia-smi mig -lgip`), where an output was seen.
    pub id: Option<u32>,
    /// Compute (SM) slices: the `g` of the name, out of [`GpuProduct::total_compute_slices`].
    pub compute_slices: u8,
    /// Memory slices out of [`GpuProduct::total_memory_slices`]; equals every placement's size.
    pub memory_slices: u8,
    /// Memory as the profile name states it, in GB.
    pub memory_gb: u32,
    /// Memory `nvidia-smi mig -lgip` reported, in MiB, where a transcript was found.
    pub memory_mib: Option<u64>,
    /// Copy engines, per the guide's table.
    pub copy_engines: u8,
    /// Video decoders (NVDEC), per the guide's table.
    pub decoders: u8,
    /// Maximum number of instances of this profile on one GPU.
    pub max_count: u8,
    /// Whether this is a `+me` profile holding the GPU's media extensions (OFA, JPEG).
    pub media_extensions: bool,
    /// Every valid placement, in the order `-lgipp` lists the starts.
    pub placements: &'static [Placement],
}

/// Field by field, as a derive would, but first by address: profiles are entries of the
/// static tables, so equal ones are usually the same entry, and the partition fit compares
/// them (inside GPU states) for every GPU of every node it scores.
impl PartialEq for MigProfile {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
            || (self.compute_slices == other.compute_slices
                && self.memory_slices == other.memory_slices
                && self.media_extensions == other.media_extensions
                && self.max_count == other.max_count
                && self.memory_gb == other.memory_gb
                && self.memory_mib == other.memory_mib
                && self.id == other.id
                && self.copy_engines == other.copy_engines
                && self.decoders == other.decoders
                && self.name == other.name
                && self.placements == other.placements)
    }
}

impl MigProfile {
    /// Memory to compare a demand against: the reported MiB, else the nominal GB of the name
    /// (10^9 bytes, rounded down to MiB). The nominal size can exceed what the driver gives
    /// (B200 1g.23gb: 21934 MiB nominal, 20992 MiB reported), so tables fill `memory_mib`
    /// wherever a transcript exists.
    pub fn capacity_mib(&self) -> u64 {
        self.memory_mib
            .unwrap_or(u64::from(self.memory_gb) * 1_000_000_000 / (1024 * 1024))
    }
}

// === placement lists (starts in memory-slice units) ===

/// 1-slice profiles on 8-slice GPUs: `{0,1,2,3,4,5,6}:1` ([guide-lgipp] IDs 19 and 20).
const P1_OF_8: &[Placement] = &[
    Placement::new(0, 1),
    Placement::new(1, 1),
    Placement::new(2, 1),
    Placement::new(3, 1),
    Placement::new(4, 1),
    Placement::new(5, 1),
    Placement::new(6, 1),
];
/// 1g profiles with two memory slices: `{0,2,4,6}:2` ([guide-lgipp] ID 15).
const P1G_2_OF_8: &[Placement] = &[
    Placement::new(0, 2),
    Placement::new(2, 2),
    Placement::new(4, 2),
    Placement::new(6, 2),
];
/// 2g profiles: `{0,2,4}:2` ([guide-lgipp] ID 14).
const P2G_OF_8: &[Placement] = &[
    Placement::new(0, 2),
    Placement::new(2, 2),
    Placement::new(4, 2),
];
/// 3g profiles: `{0,4}:4` ([guide-lgipp] ID 9).
const P3G_OF_8: &[Placement] = &[Placement::new(0, 4), Placement::new(4, 4)];
/// 4g profiles: `{0}:4` ([guide-lgipp] ID 5).
const P4G_OF_8: &[Placement] = &[Placement::new(0, 4)];
/// 7g profiles: `{0}:8` ([guide-lgipp] ID 0).
const P7G_OF_8: &[Placement] = &[Placement::new(0, 8)];
/// A30 1g: `{0,1,2,3}:1` ([a30-smi] IDs 14 and 21).
const A30_P1: &[Placement] = &[
    Placement::new(0, 1),
    Placement::new(1, 1),
    Placement::new(2, 1),
    Placement::new(3, 1),
];
/// A30 2g: `{0,2}:2` ([a30-smi] IDs 5 and 6).
const A30_P2: &[Placement] = &[Placement::new(0, 2), Placement::new(2, 2)];
/// A30 4g: `{0}:4` ([a30-smi] ID 0).
const A30_P4: &[Placement] = &[Placement::new(0, 4)];

/// Builds a table row; arguments in the order of the guide's columns where it has them.
#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    id: Option<u32>,
    compute_slices: u8,
    memory_slices: u8,
    memory_gb: u32,
    memory_mib: Option<u64>,
    copy_engines: u8,
    decoders: u8,
    max_count: u8,
    media_extensions: bool,
    placements: &'static [Placement],
) -> MigProfile {
    MigProfile {
        name,
        id,
        compute_slices,
        memory_slices,
        memory_gb,
        memory_mib,
        copy_engines,
        decoders,
        max_count,
        media_extensions,
        placements,
    }
}

// === tables ===
// Columns: name, id, g, memory slices, GB, MiB, CE, NVDEC, max, +me, placements.

/// A100-40GB: [guide] table "GPU Instance Profiles on A100"; IDs, MiB and placements from
/// [guide-lgipp] (4.75 / 9.62 / 19.50 / 39.25 GiB).
const A100_40GB: &[MigProfile] = &[
    row(
        "1g.5gb",
        Some(19),
        1,
        1,
        5,
        Some(4864),
        1,
        0,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.5gb+me",
        Some(20),
        1,
        1,
        5,
        Some(4864),
        1,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.10gb",
        Some(15),
        1,
        2,
        10,
        Some(9856),
        1,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.10gb",
        Some(14),
        2,
        2,
        10,
        Some(9856),
        2,
        1,
        3,
        false,
        P2G_OF_8,
    ),
    row(
        "3g.20gb",
        Some(9),
        3,
        4,
        20,
        Some(19968),
        3,
        2,
        2,
        false,
        P3G_OF_8,
    ),
    row(
        "4g.20gb",
        Some(5),
        4,
        4,
        20,
        Some(19968),
        4,
        2,
        1,
        false,
        P4G_OF_8,
    ),
    row(
        "7g.40gb",
        Some(0),
        7,
        8,
        40,
        Some(40192),
        7,
        5,
        1,
        false,
        P7G_OF_8,
    ),
];

/// A100-80GB: names from the [guide]'s note under the A100 table ("1g.10gb, 1g.10gb+me,
/// 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb respectively"); IDs, MiB and hardware columns
/// from [a100-80-smi] (9.50 / 19.50 / 39.25 / 78.75 GiB; CE 1/1/1/2/3/4/7, DEC 0/1/1/1/2/2/5);
/// placements as A100-40GB (same GA100 die; [a100-80-smi] shows `4g.40gb` at `0:4` and
/// `3g.40gb` at `4:4`, as that list allows, but no `-lgipp`).
const A100_80GB: &[MigProfile] = &[
    row(
        "1g.10gb",
        Some(19),
        1,
        1,
        10,
        Some(9728),
        1,
        0,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.10gb+me",
        Some(20),
        1,
        1,
        10,
        Some(9728),
        1,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.20gb",
        Some(15),
        1,
        2,
        20,
        Some(19968),
        1,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.20gb",
        Some(14),
        2,
        2,
        20,
        Some(19968),
        2,
        1,
        3,
        false,
        P2G_OF_8,
    ),
    row(
        "3g.40gb",
        Some(9),
        3,
        4,
        40,
        Some(40192),
        3,
        2,
        2,
        false,
        P3G_OF_8,
    ),
    row(
        "4g.40gb",
        Some(5),
        4,
        4,
        40,
        Some(40192),
        4,
        2,
        1,
        false,
        P4G_OF_8,
    ),
    row(
        "7g.80gb",
        Some(0),
        7,
        8,
        80,
        Some(80640),
        7,
        5,
        1,
        false,
        P7G_OF_8,
    ),
];

/// H100-80GB: [guide] "H100 80GB product (PCIe and SXM5)"; IDs, MiB and placements from
/// [h100-smi] (9.75 / 19.62 / 39.50 / 79.25 GiB).
const H100_80GB: &[MigProfile] = &[
    row(
        "1g.10gb",
        Some(19),
        1,
        1,
        10,
        Some(9984),
        1,
        1,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.10gb+me",
        Some(20),
        1,
        1,
        10,
        Some(9984),
        1,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.20gb",
        Some(15),
        1,
        2,
        20,
        Some(20096),
        1,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.20gb",
        Some(14),
        2,
        2,
        20,
        Some(20096),
        2,
        2,
        3,
        false,
        P2G_OF_8,
    ),
    row(
        "3g.40gb",
        Some(9),
        3,
        4,
        40,
        Some(40448),
        3,
        3,
        2,
        false,
        P3G_OF_8,
    ),
    row(
        "4g.40gb",
        Some(5),
        4,
        4,
        40,
        Some(40448),
        4,
        4,
        1,
        false,
        P4G_OF_8,
    ),
    row(
        "7g.80gb",
        Some(0),
        7,
        8,
        80,
        Some(81152),
        8,
        7,
        1,
        false,
        P7G_OF_8,
    ),
];

/// H100-94GB: [guide] "H100 94GB product (PCIe and SXM5)"; IDs, MiB and placements from
/// [nvl-smi] (10.75 / 21.62 / 46.38 / 93.12 GiB).
const H100_94GB: &[MigProfile] = &[
    row(
        "1g.12gb",
        Some(19),
        1,
        1,
        12,
        Some(11008),
        1,
        1,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.12gb+me",
        Some(20),
        1,
        1,
        12,
        Some(11008),
        1,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.24gb",
        Some(15),
        1,
        2,
        24,
        Some(22144),
        1,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.24gb",
        Some(14),
        2,
        2,
        24,
        Some(22144),
        2,
        2,
        3,
        false,
        P2G_OF_8,
    ),
    row(
        "3g.47gb",
        Some(9),
        3,
        4,
        47,
        Some(47488),
        3,
        3,
        2,
        false,
        P3G_OF_8,
    ),
    row(
        "4g.47gb",
        Some(5),
        4,
        4,
        47,
        Some(47488),
        4,
        4,
        1,
        false,
        P4G_OF_8,
    ),
    row(
        "7g.94gb",
        Some(0),
        7,
        8,
        94,
        Some(95360),
        8,
        7,
        1,
        false,
        P7G_OF_8,
    ),
];

/// H200-141GB: [guide] "H200 141GB product"; IDs and MiB from [h200-smi]
/// (16.00 / 32.25 / 69.50 / 139.75 GiB); placements as H100 (unverified).
const H200_141GB: &[MigProfile] = &[
    row(
        "1g.18gb",
        Some(19),
        1,
        1,
        18,
        Some(16384),
        1,
        1,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.18gb+me",
        Some(20),
        1,
        1,
        18,
        Some(16384),
        1,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.35gb",
        Some(15),
        1,
        2,
        35,
        Some(33024),
        1,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.35gb",
        Some(14),
        2,
        2,
        35,
        Some(33024),
        2,
        2,
        3,
        false,
        P2G_OF_8,
    ),
    row(
        "3g.71gb",
        Some(9),
        3,
        4,
        71,
        Some(71168),
        3,
        3,
        2,
        false,
        P3G_OF_8,
    ),
    row(
        "4g.71gb",
        Some(5),
        4,
        4,
        71,
        Some(71168),
        4,
        4,
        1,
        false,
        P4G_OF_8,
    ),
    row(
        "7g.141gb",
        Some(0),
        7,
        8,
        141,
        Some(143104),
        8,
        7,
        1,
        false,
        P7G_OF_8,
    ),
];

/// A30-24GB: [guide] "A30-24GB product"; memory and compute in quarters. IDs, MiB and
/// placements from [a30-smi] (5.81 / 11.69 / 23.44 GiB, read as the 32-MiB multiples 5952,
/// 11968 and 24000 MiB that print so; IDs 14/21/5/6/0). [a30-smi] shows one NVDEC on
/// `1g.6gb` where the [guide] says none; the guide's number is kept.
const A30_24GB: &[MigProfile] = &[
    row(
        "1g.6gb",
        Some(14),
        1,
        1,
        6,
        Some(5952),
        1,
        0,
        4,
        false,
        A30_P1,
    ),
    row(
        "1g.6gb+me",
        Some(21),
        1,
        1,
        6,
        Some(5952),
        1,
        1,
        1,
        true,
        A30_P1,
    ),
    row(
        "2g.12gb",
        Some(5),
        2,
        2,
        12,
        Some(11968),
        2,
        2,
        2,
        false,
        A30_P2,
    ),
    row(
        "2g.12gb+me",
        Some(6),
        2,
        2,
        12,
        Some(11968),
        2,
        2,
        1,
        true,
        A30_P2,
    ),
    row(
        "4g.24gb",
        Some(0),
        4,
        4,
        24,
        Some(24000),
        4,
        4,
        1,
        false,
        A30_P4,
    ),
];

/// B200 (180 GB): [guide] "B200 180 GB product"; IDs 19/20/15/14 and MiB for those from
/// [b200-smi] (later driver's 20.50 GiB for 1g.23gb, and 44.25 GiB); the rest unverified;
/// placements as H100 (unverified).
const B200: &[MigProfile] = &[
    row(
        "1g.23gb",
        Some(19),
        1,
        1,
        23,
        Some(20992),
        2,
        1,
        7,
        false,
        P1_OF_8,
    ),
    row(
        "1g.23gb+me",
        Some(20),
        1,
        1,
        23,
        Some(20992),
        2,
        1,
        1,
        true,
        P1_OF_8,
    ),
    row(
        "1g.45gb",
        Some(15),
        1,
        2,
        45,
        Some(45312),
        2,
        1,
        4,
        false,
        P1G_2_OF_8,
    ),
    row(
        "2g.45gb",
        Some(14),
        2,
        2,
        45,
        Some(45312),
        3,
        1,
        3,
        false,
        P2G_OF_8,
    ),
    row("3g.90gb", None, 3, 4, 90, None, 6, 1, 2, false, P3G_OF_8),
    row("4g.90gb", None, 4, 4, 90, None, 8, 1, 1, false, P4G_OF_8),
    row("7g.180gb", None, 7, 8, 180, None, 16, 1, 1, false, P7G_OF_8),
];

/// Every GPU-instance profile of `product`, in the guide's table order (smallest first).
pub fn profiles(product: GpuProduct) -> &'static [MigProfile] {
    match product {
        GpuProduct::A100_40GB => A100_40GB,
        GpuProduct::A100_80GB => A100_80GB,
        GpuProduct::H100_80GB => H100_80GB,
        GpuProduct::H100_94GB => H100_94GB,
        GpuProduct::H200_141GB => H200_141GB,
        GpuProduct::A30_24GB => A30_24GB,
        GpuProduct::B200 => B200,
    }
}

/// The profile of `product` with this short name (`1g.10gb`; a leading `MIG ` is accepted).
pub fn profile(product: GpuProduct, name: &str) -> Option<&'static MigProfile> {
    let name = name.strip_prefix("MIG ").unwrap_or(name);
    profiles(product).iter().find(|p| p.name == name)
}
