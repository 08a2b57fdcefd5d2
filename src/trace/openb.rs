//! The openb workload family built into the binary: the 15 pod lists of the FGD paper that
//! `benches/traces/alibaba-openb/` bundles (its README has their provenance), by name.
//!
//! The name of a workload is its file name without `openb_pod_list_` and `.csv`; the FGD
//! authors' published results (`fgd-published/analysis_allo_discrete.csv`) call the same
//! workload by its file stem, `openb_pod_list_<name>`.

use super::TracePod;
use super::alibaba::{TraceError, bundled_gpushare100_pods, bundled_pods, read_pods_from};

/// The prefix the trace's file names (and the published results) put before a workload name.
pub const FILE_PREFIX: &str = "openb_pod_list_";

/// The name `--workload` takes for every bundled workload.
pub const ALL: &str = "all";

/// Every bundled workload, in the order reports list them: the default trace, then the
/// paper's families (sharing, GPU-model constraints, CPU-only share, multi-GPU).
pub const WORKLOADS: [&str; 15] = [
    "default",
    "gpushare40",
    "gpushare60",
    "gpushare80",
    "gpushare100",
    "gpuspec10",
    "gpuspec20",
    "gpuspec25",
    "cpu050",
    "cpu100",
    "cpu200",
    "multigpu20",
    "multigpu30",
    "multigpu40",
    "multigpu50",
];

/// Errors of picking a bundled workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A name that is not one of [`WORKLOADS`].
    #[error("unknown workload {name:?}; expected `all` or one of: {}", WORKLOADS.join(", "))]
    Unknown {
        /// What was asked for.
        name: String,
    },
    /// The bundled file did not parse (a broken build).
    #[error(transparent)]
    Trace(#[from] TraceError),
}

macro_rules! bundled {
    ($name:literal) => {
        include_str!(concat!(
            "../../benches/traces/alibaba-openb/openb_pod_list_",
            $name,
            ".csv"
        ))
    };
}

/// The file text of a bundled workload other than the two `alibaba` already embeds.
fn text(name: &str) -> Option<&'static str> {
    Some(match name {
        "gpushare40" => bundled!("gpushare40"),
        "gpushare60" => bundled!("gpushare60"),
        "gpushare80" => bundled!("gpushare80"),
        "gpuspec10" => bundled!("gpuspec10"),
        "gpuspec20" => bundled!("gpuspec20"),
        "gpuspec25" => bundled!("gpuspec25"),
        "cpu050" => bundled!("cpu050"),
        "cpu100" => bundled!("cpu100"),
        "cpu200" => bundled!("cpu200"),
        "multigpu20" => bundled!("multigpu20"),
        "multigpu30" => bundled!("multigpu30"),
        "multigpu40" => bundled!("multigpu40"),
        "multigpu50" => bundled!("multigpu50"),
        _ => return None,
    })
}

/// The names a `--workload` value stands for: every workload for `all`, else the one named
/// (case-insensitive, with or without the `openb_pod_list_` prefix).
pub fn resolve(value: &str) -> Result<Vec<&'static str>, WorkloadError> {
    let wanted = value.trim().to_ascii_lowercase();
    if wanted == ALL {
        return Ok(WORKLOADS.to_vec());
    }
    let bare = wanted.strip_prefix(FILE_PREFIX).unwrap_or(&wanted);
    let bare = bare.strip_suffix(".csv").unwrap_or(bare);
    WORKLOADS
        .iter()
        .find(|w| **w == bare)
        .map(|w| vec![*w])
        .ok_or_else(|| WorkloadError::Unknown {
            name: value.to_owned(),
        })
}

/// The pods of bundled workload `name`.
pub fn pods(name: &str) -> Result<Vec<TracePod>, WorkloadError> {
    match name {
        "default" => Ok(bundled_pods()?),
        "gpushare100" => Ok(bundled_gpushare100_pods()?),
        other => {
            let text = text(other).ok_or_else(|| WorkloadError::Unknown {
                name: other.to_owned(),
            })?;
            let source = format!("bundled:{FILE_PREFIX}{other}.csv");
            Ok(read_pods_from(text.as_bytes(), &source)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_workload_parses_with_its_documented_pod_count() {
        // Row counts from benches/traces/alibaba-openb/README.md.
        let expected = [
            8152, 8152, 8152, 8152, 8152, 8152, 8152, 8152, 7439, 7853, 8832, 8324, 8508, 8746,
            9061,
        ];
        for (name, rows) in WORKLOADS.iter().zip(expected) {
            assert_eq!(pods(name).unwrap().len(), rows, "{name}");
        }
    }

    #[test]
    fn names_resolve_with_or_without_the_file_prefix_and_all_means_every_one() {
        assert_eq!(resolve("all").unwrap().len(), 15);
        assert_eq!(resolve("GPUSPEC25").unwrap(), vec!["gpuspec25"]);
        assert_eq!(
            resolve("openb_pod_list_cpu050.csv").unwrap(),
            vec!["cpu050"]
        );
        let err = resolve("gpuspec33").unwrap_err().to_string();
        assert!(err.contains("unknown workload \"gpuspec33\""), "{err}");
        assert!(err.contains("multigpu50"), "lists the names: {err}");
        assert!(pods("nope").is_err());
    }
}
