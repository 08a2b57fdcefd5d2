//! Built-in fake GPU nodes for tests, CI, e2e and demos (`--fake-gpus <profile>`).
//!
//! The numbers are what NVML reports on the real products (total memory as `nvidia-smi`
//! shows it, e.g. 81559 MiB for an H100 80GB HBM3; MIG instance memory from the MIG catalog),
//! and the PCI bus IDs follow the layout of 8-GPU HGX boards. UUIDs are derived from a seed
//! (the node name) with a fixed hash, so the same node always gets the same UUIDs and two fake
//! nodes never share one.

use std::fmt;
use std::str::FromStr;

use crate::model::mig::{GpuProduct, Placement, profile};
use crate::model::{Gpu, Inventory, MigDevice, MigState};

/// A built-in fake node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FakeProfile {
    /// 8 × H100 80GB HBM3, MIG off.
    H100x8,
    /// 8 × A100-SXM4-40GB, MIG off.
    A100_40x8,
    /// 4 × A100-SXM4-80GB, MIG off.
    A100_80x4,
    /// 8 × H100 with static MIG: GPUs 0–3 as seven 1g.10gb each, GPUs 4–7 "balanced"
    /// (two 1g.10gb, one 2g.20gb, one 3g.40gb), as `nvidia-mig-parted` lays them out.
    H100x8MigStatic,
    /// 8 × H100 with MIG on and no instances: tessera creates them on prepare.
    H100x8MigDynamic,
    /// 4 × H100: GPUs 0–1 MIG off, GPU 2 static "balanced" MIG, GPU 3 dynamic MIG.
    Mixed,
    /// 4 × L4 (Ada, not MIG-capable).
    L4x4,
}

const MIB: u64 = 1024 * 1024;
const DRIVER_VERSION: &str = "570.124.06";
const CUDA_VERSION: &str = "12.8";

/// PCI bus IDs of the eight GPUs on an HGX H100 board.
const HGX_H100_BUS_IDS: [&str; 8] = [
    "0000:18:00.0",
    "0000:2a:00.0",
    "0000:3a:00.0",
    "0000:5d:00.0",
    "0000:9a:00.0",
    "0000:ab:00.0",
    "0000:ba:00.0",
    "0000:db:00.0",
];

/// PCI bus IDs of the eight GPUs on an HGX A100 board.
const HGX_A100_BUS_IDS: [&str; 8] = [
    "0000:07:00.0",
    "0000:0f:00.0",
    "0000:47:00.0",
    "0000:4e:00.0",
    "0000:87:00.0",
    "0000:90:00.0",
    "0000:b7:00.0",
    "0000:bd:00.0",
];

/// PCI bus IDs of four PCIe cards in a 2-socket server.
const PCIE_BUS_IDS: [&str; 4] = [
    "0000:17:00.0",
    "0000:65:00.0",
    "0000:ca:00.0",
    "0000:e3:00.0",
];

/// One GPU model as NVML describes it.
struct Model {
    product_name: &'static str,
    memory_mib: u64,
    architecture: &'static str,
    compute_capability: &'static str,
}

const H100: Model = Model {
    product_name: "NVIDIA H100 80GB HBM3",
    memory_mib: 81559,
    architecture: "Hopper",
    compute_capability: "9.0",
};
const A100_40: Model = Model {
    product_name: "NVIDIA A100-SXM4-40GB",
    memory_mib: 40960,
    architecture: "Ampere",
    compute_capability: "8.0",
};
const A100_80: Model = Model {
    product_name: "NVIDIA A100-SXM4-80GB",
    memory_mib: 81920,
    architecture: "Ampere",
    compute_capability: "8.0",
};
const L4: Model = Model {
    product_name: "NVIDIA L4",
    memory_mib: 23034,
    architecture: "Ada Lovelace",
    compute_capability: "8.9",
};

/// `nvidia-mig-parted`'s `all-1g.10gb` on an H100: seven 1g.10gb.
const ALL_1G: &[(&str, u8, u8)] = &[
    ("1g.10gb", 0, 1),
    ("1g.10gb", 1, 1),
    ("1g.10gb", 2, 1),
    ("1g.10gb", 3, 1),
    ("1g.10gb", 4, 1),
    ("1g.10gb", 5, 1),
    ("1g.10gb", 6, 1),
];

/// `nvidia-mig-parted`'s `all-balanced` on an H100: 2 × 1g.10gb, 1 × 2g.20gb, 1 × 3g.40gb.
const BALANCED: &[(&str, u8, u8)] = &[
    ("1g.10gb", 0, 1),
    ("1g.10gb", 1, 1),
    ("2g.20gb", 2, 2),
    ("3g.40gb", 4, 4),
];

/// How one GPU of a profile is set up.
enum Mig {
    Off,
    Static(&'static [(&'static str, u8, u8)]),
    Dynamic,
}

impl FakeProfile {
    /// Every profile, in the order `--help` lists them.
    pub const ALL: [FakeProfile; 7] = [
        FakeProfile::H100x8,
        FakeProfile::A100_40x8,
        FakeProfile::A100_80x4,
        FakeProfile::H100x8MigStatic,
        FakeProfile::H100x8MigDynamic,
        FakeProfile::Mixed,
        FakeProfile::L4x4,
    ];

    /// The name `--fake-gpus` takes.
    pub fn name(self) -> &'static str {
        match self {
            FakeProfile::H100x8 => "h100x8",
            FakeProfile::A100_40x8 => "a100-40x8",
            FakeProfile::A100_80x4 => "a100-80x4",
            FakeProfile::H100x8MigStatic => "h100x8-mig-static",
            FakeProfile::H100x8MigDynamic => "h100x8-mig-dynamic",
            FakeProfile::Mixed => "mixed",
            FakeProfile::L4x4 => "l4x4",
        }
    }

    /// One line for `--help`.
    pub fn about(self) -> &'static str {
        match self {
            FakeProfile::H100x8 => "8 × H100 80GB, MIG off",
            FakeProfile::A100_40x8 => "8 × A100 40GB, MIG off",
            FakeProfile::A100_80x4 => "4 × A100 80GB, MIG off",
            FakeProfile::H100x8MigStatic => {
                "8 × H100, static MIG: GPUs 0-3 seven 1g.10gb, GPUs 4-7 balanced"
            }
            FakeProfile::H100x8MigDynamic => "8 × H100, dynamic MIG (instances made on prepare)",
            FakeProfile::Mixed => "4 × H100: 2 MIG off, 1 static balanced MIG, 1 dynamic MIG",
            FakeProfile::L4x4 => "4 × L4 (not MIG-capable)",
        }
    }

    /// The profile's inventory; `seed` (the node name) varies the UUIDs.
    pub fn inventory(self, seed: &str) -> Inventory {
        let gpus = match self {
            FakeProfile::H100x8 => build(self, seed, &H100, &HGX_H100_BUS_IDS, |_| Mig::Off),
            FakeProfile::A100_40x8 => build(self, seed, &A100_40, &HGX_A100_BUS_IDS, |_| Mig::Off),
            FakeProfile::A100_80x4 => build(self, seed, &A100_80, &PCIE_BUS_IDS, |_| Mig::Off),
            FakeProfile::H100x8MigStatic => build(self, seed, &H100, &HGX_H100_BUS_IDS, |i| {
                Mig::Static(if i < 4 { ALL_1G } else { BALANCED })
            }),
            FakeProfile::H100x8MigDynamic => {
                build(self, seed, &H100, &HGX_H100_BUS_IDS, |_| Mig::Dynamic)
            }
            FakeProfile::Mixed => build(self, seed, &H100, &PCIE_BUS_IDS, |i| match i {
                0 | 1 => Mig::Off,
                2 => Mig::Static(BALANCED),
                _ => Mig::Dynamic,
            }),
            FakeProfile::L4x4 => build(self, seed, &L4, &PCIE_BUS_IDS, |_| Mig::Off),
        };
        Inventory {
            driver_version: DRIVER_VERSION.to_owned(),
            cuda_driver_version: Some(CUDA_VERSION.to_owned()),
            gpus,
        }
    }
}

fn build(
    which: FakeProfile,
    seed: &str,
    model: &Model,
    bus_ids: &[&str],
    mig: impl Fn(u32) -> Mig,
) -> Vec<Gpu> {
    let product = GpuProduct::from_product_name(model.product_name);
    bus_ids
        .iter()
        .zip(0u32..)
        .map(|(bus_id, index)| {
            let uuid = fake_uuid("GPU", &format!("{seed}/{}/{index}", which.name()));
            let mig = match mig(index) {
                Mig::Off => MigState::Disabled,
                Mig::Dynamic => MigState::Dynamic,
                Mig::Static(layout) => MigState::Static {
                    devices: layout
                        .iter()
                        .zip(0u32..)
                        .map(|(&(name, start, size), k)| MigDevice {
                            uuid: fake_uuid("MIG", &format!("{uuid}/{k}")),
                            profile: name.to_owned(),
                            placement: Placement::new(start, size),
                            // An unknown name gives 0 bytes, which validation refuses: the
                            // profile tests catch a typo in the tables above.
                            memory_bytes: product
                                .and_then(|p| profile(p, name))
                                .map_or(0, |p| p.capacity_mib() * MIB),
                        })
                        .collect(),
                },
            };
            Gpu {
                index,
                uuid,
                pci_bus_id: (*bus_id).to_owned(),
                product_name: model.product_name.to_owned(),
                memory_bytes: model.memory_mib * MIB,
                architecture: model.architecture.to_owned(),
                cuda_compute_capability: model.compute_capability.to_owned(),
                mig,
            }
        })
        .collect()
}

/// `PREFIX-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from two FNV-1a hashes of `key`, with the
/// version-4 and variant bits set so it reads like the UUIDs NVML prints.
fn fake_uuid(prefix: &str, key: &str) -> String {
    let hi = fnv1a(key.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let lo = fnv1a(key.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0xc << 60)) | (0x8 << 60);
    format!(
        "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl fmt::Display for FakeProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`FakeProfile::from_str`]: the unknown name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fake GPU profile {0:?}; known profiles: {known}", known = known_profiles())]
pub struct UnknownProfile(pub String);

/// Every profile name, comma-separated.
pub fn known_profiles() -> String {
    FakeProfile::ALL.map(FakeProfile::name).join(", ")
}

impl FromStr for FakeProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FakeProfile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_profile_is_a_valid_inventory() {
        for p in FakeProfile::ALL {
            let inv = p.inventory("node-a");
            inv.validate().unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(!inv.gpus.is_empty(), "{p}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for p in FakeProfile::ALL {
            assert_eq!(p.name().parse::<FakeProfile>(), Ok(p));
        }
        let err = "h100x9".parse::<FakeProfile>().unwrap_err().to_string();
        assert!(
            err.contains("h100x8-mig-static") && err.contains("h100x9"),
            "{err}"
        );
    }

    #[test]
    fn uuids_are_stable_per_seed_and_distinct_across_nodes() {
        let a = FakeProfile::H100x8MigStatic.inventory("node-a");
        assert_eq!(a, FakeProfile::H100x8MigStatic.inventory("node-a"));
        let b = FakeProfile::H100x8MigStatic.inventory("node-b");
        let ua: BTreeSet<_> = a.gpus.iter().map(|g| g.uuid.clone()).collect();
        assert!(b.gpus.iter().all(|g| !ua.contains(&g.uuid)));
        let uuid = &a.gpus[0].uuid;
        assert_eq!(uuid.len(), 40, "{uuid}");
        assert!(
            uuid.starts_with("GPU-") && uuid.as_bytes()[18] == b'4',
            "{uuid}"
        );
    }

    #[test]
    fn the_mixed_profile_has_every_mig_state() {
        let inv = FakeProfile::Mixed.inventory("n");
        let states: Vec<_> = inv
            .gpus
            .iter()
            .map(|g| match g.mig {
                MigState::Disabled => "off",
                MigState::Static { .. } => "static",
                MigState::Dynamic => "dynamic",
            })
            .collect();
        assert_eq!(states, ["off", "off", "static", "dynamic"]);
        assert!(
            FakeProfile::L4x4.inventory("n").gpus[0]
                .mig_product()
                .is_none()
        );
    }
}
