//! One CDI spec per prepared claim in the CDI directory (`/var/run/cdi`), telling the
//! container runtime which GPUs a container gets: `NVIDIA_VISIBLE_DEVICES`, the device nodes,
//! and MPS client limits.
//!
//! Kind `k8s.<driver>/claim` (the `k8s.` prefix keeps these transient specs apart from a
//! vendor's static ones, as the NVIDIA driver does); device names `<claimUID>-<device>`
//! (plus `-<shareID>` for a share), so a name is never reused and runtimes never hit a stale
//! cache entry.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use super::atomic::{self, Durability};
use super::names;

/// The lowest CDI version covering what is written (`env`, `deviceNodes.path`): runtimes
/// on a node may be older than the current spec.
pub const CDI_VERSION: &str = "0.3.0";
/// CDI class of the per-claim specs.
const CDI_CLASS: &str = "claim";

/// Why a CDI spec could not be written or removed.
#[derive(Debug, Error)]
pub enum CdiError {
    /// The file operation failed.
    #[error("CDI spec {path}: {source}")]
    Io {
        /// The spec file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The spec could not be encoded.
    #[error("cannot encode CDI spec {path}: {source}")]
    Encode {
        /// The spec file.
        path: PathBuf,
        /// The encoder error.
        source: serde_json::Error,
    },
}

/// A CDI spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Spec version.
    pub cdi_version: String,
    /// `vendor/class`.
    pub kind: String,
    /// The claim's devices.
    pub devices: Vec<SpecDevice>,
    /// Edits applied whenever any device of the spec is used.
    pub container_edits: ContainerEdits,
}

/// One device of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecDevice {
    /// Unique device name (without the kind).
    pub name: String,
    /// Edits for this device.
    pub container_edits: ContainerEdits,
}

/// Container edits (the subset tessera writes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEdits {
    /// `KEY=VALUE` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Device nodes to create in the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    /// Bind mounts (the MPS pipe and shared-memory directories).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

/// A mount of a host path into the container (CDI `mounts`, in the spec since 0.3.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub container_path: String,
    /// Mount options, e.g. `rbind`.
    pub options: Vec<String>,
}

/// A device node, by path (the runtime reads type and numbers from the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceNode {
    /// Path in the container and on the host.
    pub path: String,
}

/// The CDI directory and the naming for one driver.
#[derive(Debug, Clone)]
pub struct CdiDir {
    dir: PathBuf,
    vendor: String,
}

impl CdiDir {
    /// Specs for `driver` in `dir`.
    pub fn new(dir: &Path, driver: &str) -> Self {
        CdiDir {
            dir: dir.to_owned(),
            vendor: format!("k8s.{driver}"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spec kind, `k8s.<driver>/claim`.
    pub fn kind(&self) -> String {
        format!("{}/{CDI_CLASS}", self.vendor)
    }

    /// The unqualified device name for a claim's device.
    pub fn device_name(claim_uid: &str, device: &str, share_id: Option<&str>) -> String {
        match share_id {
            Some(share) => format!("{claim_uid}-{device}-{share}"),
            None => format!("{claim_uid}-{device}"),
        }
    }

    /// The fully-qualified ID the kubelet passes to the runtime: `kind=name`.
    pub fn qualified(&self, device_name: &str) -> String {
        format!("{}={device_name}", self.kind())
    }

    /// Path of a claim's spec file.
    pub fn spec_path(&self, claim_uid: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{CDI_CLASS}_{claim_uid}.json", self.vendor))
    }

    /// Write a claim's spec atomically.
    ///
    /// Atomic against a process crash, not fsynced: a spec only matters until the next
    /// reboot (`/var/run/cdi` is a tmpfs, and after a reboot recovery drops every claim, so
    /// specs are written again), while two fsyncs would double the latency of prepare.
    pub fn write(&self, claim_uid: &str, spec: &Spec) -> Result<(), CdiError> {
        let path = self.spec_path(claim_uid);
        let bytes = serde_json::to_vec_pretty(spec).map_err(|source| CdiError::Encode {
            path: path.clone(),
            source,
        })?;
        atomic::write(&path, &bytes, Durability::ProcessCrash)
            .map_err(|source| CdiError::Io { path, source })
    }

    /// Remove a claim's spec; a missing one is fine.
    pub fn remove(&self, claim_uid: &str) -> Result<(), CdiError> {
        let path = self.spec_path(claim_uid);
        atomic::remove(&path, Durability::ProcessCrash)
            .map(|_| ())
            .map_err(|source| CdiError::Io { path, source })
    }

    /// The claim UIDs that have a spec file in the directory: every
    /// `k8s.<driver>-claim_<uid>.json` whose `<uid>` is one this driver could have written
    /// (other drivers' and vendors' specs are never listed).
    pub fn claims_with_specs(&self) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let lead = format!("{}-{CDI_CLASS}_", self.vendor);
        let mut uids = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(uid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(lead.as_str()))
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if names::uid("claim uid", uid).is_ok() {
                uids.push(uid.to_owned());
            }
        }
        uids.sort();
        Ok(uids)
    }

    /// Delete temp files a crash mid-write left behind.
    pub fn remove_temps(&self) -> io::Result<Vec<PathBuf>> {
        atomic::remove_temps(&self.dir, &self.vendor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_follow_the_claim_uid() {
        let cdi = CdiDir::new(Path::new("/var/run/cdi"), "gpu.tessera.dev");
        assert_eq!(cdi.kind(), "k8s.gpu.tessera.dev/claim");
        let name = CdiDir::device_name("uid-1", "gpu-0-shared", Some("s1"));
        assert_eq!(name, "uid-1-gpu-0-shared-s1");
        assert_eq!(
            cdi.qualified(&name),
            "k8s.gpu.tessera.dev/claim=uid-1-gpu-0-shared-s1"
        );
        assert_eq!(
            cdi.spec_path("uid-1"),
            Path::new("/var/run/cdi/k8s.gpu.tessera.dev-claim_uid-1.json")
        );
    }

    #[test]
    fn specs_are_written_as_cdi_json_and_removed_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let cdi = CdiDir::new(dir.path(), "gpu.tessera.dev");
        let spec = Spec {
            cdi_version: CDI_VERSION.to_owned(),
            kind: cdi.kind(),
            devices: vec![SpecDevice {
                name: "uid-1-gpu-0".to_owned(),
                container_edits: ContainerEdits {
                    env: vec![],
                    device_nodes: vec![DeviceNode {
                        path: "/dev/nvidia0".to_owned(),
                    }],
                    ..ContainerEdits::default()
                },
            }],
            container_edits: ContainerEdits {
                env: vec!["NVIDIA_VISIBLE_DEVICES=GPU-0".to_owned()],
                ..ContainerEdits::default()
            },
        };
        cdi.write("uid-1", &spec).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cdi.spec_path("uid-1")).unwrap()).unwrap();
        assert_eq!(raw["cdiVersion"], "0.3.0");
        assert_eq!(
            raw["devices"][0]["containerEdits"]["deviceNodes"][0]["path"],
            "/dev/nvidia0"
        );
        assert_eq!(
            raw["containerEdits"]["env"][0],
            "NVIDIA_VISIBLE_DEVICES=GPU-0"
        );
        assert!(raw["devices"][0]["containerEdits"].get("env").is_none());
        // Only this driver's claim specs are listed.
        std::fs::write(dir.path().join("nvidia.com-gpu.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("k8s.other.dev-claim_uid-2.json"), b"{}").unwrap();
        assert_eq!(cdi.claims_with_specs().unwrap(), vec!["uid-1".to_owned()]);
        cdi.remove("uid-1").unwrap();
        cdi.remove("uid-1").unwrap();
        assert!(!cdi.spec_path("uid-1").exists());
        assert!(cdi.claims_with_specs().unwrap().is_empty());
    }
}
