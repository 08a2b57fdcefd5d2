//! The fake [`DeviceSource`]: a built-in profile or a YAML inventory file.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DeviceSource, DiscoveryError, FakeProfile};
use crate::model::Inventory;

/// Largest inventory file read: a 64-GPU node with full MIG layouts is about 40 KiB of YAML,
/// so 1 MiB leaves room for comments without letting a wrong path fill memory.
pub const MAX_INVENTORY_FILE_BYTES: u64 = 1024 * 1024;

/// GPUs that are not there: a built-in profile, or an inventory file (re-read on every call,
/// so editing it while the plugin runs simulates a hardware change).
#[derive(Debug, Clone)]
pub struct FakeSource {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Fixed {
        inventory: Inventory,
        origin: String,
    },
    File(PathBuf),
}

impl FakeSource {
    /// A built-in profile, with UUIDs derived from `seed` (the node name).
    pub fn from_profile(profile: FakeProfile, seed: &str) -> Result<Self, DiscoveryError> {
        Self::from_inventory(profile.inventory(seed), format!("fake profile {profile}"))
    }

    /// An inventory file in the YAML form of [`Inventory`]; read and checked now, so a bad
    /// file fails at start-up, and again on every [`DeviceSource::inventory`] call.
    pub fn from_file(path: &Path) -> Result<Self, DiscoveryError> {
        read_file(path)?;
        Ok(FakeSource {
            kind: Kind::File(path.to_owned()),
        })
    }

    /// A fixed inventory (tests, embedding); `origin` names it in errors and logs.
    pub fn from_inventory(inventory: Inventory, origin: String) -> Result<Self, DiscoveryError> {
        inventory
            .validate()
            .map_err(|source| DiscoveryError::Invalid {
                origin: origin.clone(),
                source,
            })?;
        Ok(FakeSource {
            kind: Kind::Fixed { inventory, origin },
        })
    }
}

impl DeviceSource for FakeSource {
    fn inventory(&self) -> Result<Inventory, DiscoveryError> {
        match &self.kind {
            Kind::Fixed { inventory, .. } => Ok(inventory.clone()),
            Kind::File(path) => read_file(path),
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Fixed { origin, .. } => origin.clone(),
            Kind::File(path) => format!("fake inventory {}", path.display()),
        }
    }
}

/// Reads, parses and validates an inventory file, refusing files over the size bound before
/// reading them whole.
fn read_file(path: &Path) -> Result<Inventory, DiscoveryError> {
    let read_err = |source| DiscoveryError::ReadFile {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    // Read one byte past the limit, so an oversized file is detected even when its metadata
    // lies (a pipe, /proc).
    file.take(MAX_INVENTORY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_INVENTORY_FILE_BYTES {
        return Err(DiscoveryError::FileTooLarge {
            path: path.to_owned(),
            max: MAX_INVENTORY_FILE_BYTES,
        });
    }
    let inventory: Inventory =
        serde_saphyr::from_str(&text).map_err(|e| DiscoveryError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    inventory
        .validate()
        .map_err(|source| DiscoveryError::Invalid {
            origin: format!("inventory file {}", path.display()),
            source,
        })?;
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TWO_GPUS: &str = r#"
driverVersion: "570.124.06"
cudaDriverVersion: "12.8"
gpus:
  - index: 0
    uuid: GPU-11111111-2222-4333-8444-555555555555
    pciBusId: "0000:18:00.0"
    productName: NVIDIA H100 80GB HBM3
    memoryBytes: 85520809984
    architecture: Hopper
    cudaComputeCapability: "9.0"
  - index: 1
    uuid: GPU-11111111-2222-4333-8444-666666666666
    pciBusId: "0000:2a:00.0"
    productName: NVIDIA H100 80GB HBM3
    memoryBytes: 85520809984
    architecture: Hopper
    cudaComputeCapability: "9.0"
    mig:
      mode: static
      devices:
        - uuid: MIG-aaaaaaaa-2222-4333-8444-666666666666
          profile: 3g.40gb
          placement: {start: 4, size: 4}
          memoryBytes: 42412802048
"#;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn an_inventory_file_is_read_and_reread() {
        let f = write(TWO_GPUS);
        let source = FakeSource::from_file(f.path()).unwrap();
        let inv = source.inventory().unwrap();
        assert_eq!(inv.gpus.len(), 2);
        assert!(matches!(inv.gpus[0].mig, crate::model::MigState::Disabled));
        assert!(source.describe().contains(&f.path().display().to_string()));

        // Editing the file changes what the next call returns.
        std::fs::write(f.path(), TWO_GPUS.replace("index: 1", "index: 7")).unwrap();
        assert_eq!(source.inventory().unwrap().gpus[1].index, 7);
    }

    #[test]
    fn a_broken_file_names_the_path_and_the_place() {
        let f = write("driverVersion: 1\ngpus: [ {index: zero} ]\n");
        let err = FakeSource::from_file(f.path()).unwrap_err().to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(err.contains("not a valid inventory"), "{err}");
        assert!(err.contains("line 2") || err.contains("2:"), "{err}");
    }

    #[test]
    fn an_invalid_inventory_is_refused_with_the_rule() {
        let f = write(&TWO_GPUS.replace("start: 4", "start: 2"));
        let err = FakeSource::from_file(f.path()).unwrap_err().to_string();
        assert!(err.contains("GPU 1") && err.contains("3g.40gb"), "{err}");
    }

    #[test]
    fn missing_and_oversized_files_are_refused() {
        let err = FakeSource::from_file(Path::new("/nonexistent/gpus.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/gpus.yaml"), "{err}");
        let big = format!(
            "# {}\n{TWO_GPUS}",
            "x".repeat(MAX_INVENTORY_FILE_BYTES as usize)
        );
        let f = write(&big);
        let err = FakeSource::from_file(f.path()).unwrap_err();
        assert!(matches!(err, DiscoveryError::FileTooLarge { .. }), "{err}");
    }

    #[test]
    fn profiles_describe_themselves() {
        let s = FakeSource::from_profile(FakeProfile::H100x8, "n1").unwrap();
        assert_eq!(s.describe(), "fake profile h100x8");
        assert_eq!(s.inventory().unwrap().gpus.len(), 8);
    }
}
