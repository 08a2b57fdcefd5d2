//! Flags and wiring of the plugin's per-pod GPU usage sampler ([`crate::usage`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::discovery::SourceSpec;
use crate::prepare::ClaimSource;
use crate::usage::{DeviceSample, FakeUsageSource, PodNamer, Sampler, UsageMetrics, UsageSource};

/// Longest sampling interval accepted.
const MAX_INTERVAL_SECONDS: u64 = 3600;
/// Largest `--usage-max-series`.
const MAX_SERIES: usize = 10_000;
/// Largest `--fake-usage` file.
const MAX_FAKE_USAGE_BYTES: u64 = 1024 * 1024;

/// Per-pod GPU usage flags of `tessera plugin`.
#[derive(Debug, Clone, clap::Args)]
pub struct UsageArgs {
    /// The host's `/proc`, mounted read-only: maps GPU process IDs to pods through
    /// `/proc/<pid>/cgroup`.
    #[arg(long, env = "TESSERA_HOST_PROC", default_value = "/host/proc")]
    pub host_proc: PathBuf,
    /// Seconds between GPU usage samples; 0 turns per-pod usage off.
    #[arg(long, env = "TESSERA_USAGE_INTERVAL", default_value_t = 15)]
    pub usage_interval: u64,
    /// Most (namespace, pod, container, claim, device) series per sample; more are dropped
    /// and counted in `tessera_plugin_gpu_usage_series_overflow_total`.
    #[arg(long, env = "TESSERA_USAGE_MAX_SERIES", default_value_t = 512)]
    pub usage_max_series: usize,
    /// With fake GPUs: a YAML list of device samples (uuid, parentUuid, utilizationPercent,
    /// processes: pid, usedMemoryBytes, smPercent) reported as their usage. Without it fake
    /// GPUs run no processes.
    #[arg(long, env = "TESSERA_FAKE_USAGE", value_name = "FILE")]
    pub fake_usage: Option<PathBuf>,
}

impl UsageArgs {
    /// Everything that can be checked without a runtime.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.host_proc.is_absolute() {
            bail!(
                "--host-proc {} must be an absolute path",
                self.host_proc.display()
            );
        }
        if self.usage_interval > MAX_INTERVAL_SECONDS {
            bail!(
                "--usage-interval {} is over {MAX_INTERVAL_SECONDS} seconds",
                self.usage_interval
            );
        }
        if !(1..=MAX_SERIES).contains(&self.usage_max_series) {
            bail!(
                "--usage-max-series {} must be between 1 and {MAX_SERIES}",
                self.usage_max_series
            );
        }
        Ok(())
    }

    /// Register the usage metrics (always, so dashboards see the families) and return them.
    pub fn register(registry: &mut Registry) -> UsageMetrics {
        UsageMetrics::register(registry)
    }

    /// The pod namer the sampler labels its series with: claims' `reservedFor` through
    /// `claims`, container names through `client`.
    pub fn namer(claims: Arc<dyn ClaimSource>, client: kube::Client) -> PodNamer {
        PodNamer::new(claims, Some(PodNamer::kube_reader(client)))
    }

    /// Start the sampler, unless `--usage-interval 0`; `inventory` sizes the held-device
    /// series.
    pub fn start(
        &self,
        spec: &SourceSpec,
        state_dir: &Path,
        namer: PodNamer,
        inventory: tokio::sync::watch::Receiver<crate::model::Inventory>,
        metrics: UsageMetrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        if self.usage_interval == 0 {
            info!("per-pod GPU usage is off (--usage-interval 0)");
            return Ok(None);
        }
        let Some(source) = self.source(spec)? else {
            return Ok(None);
        };
        let sampler = Arc::new(
            Sampler::new(source, &self.host_proc, state_dir, self.usage_max_series)
                .with_inventory(inventory),
        );
        let interval = Duration::from_secs(self.usage_interval);
        Ok(Some(tokio::spawn(
            sampler.run(namer, metrics, interval, shutdown),
        )))
    }

    fn source(&self, spec: &SourceSpec) -> anyhow::Result<Option<Arc<dyn UsageSource>>> {
        match spec {
            SourceSpec::Profile { .. } | SourceSpec::File(_) => {
                let samples = match &self.fake_usage {
                    Some(path) => read_fake(path)?,
                    None => Vec::new(),
                };
                Ok(Some(Arc::new(FakeUsageSource::new(samples))))
            }
            SourceSpec::Nvml(_) if self.fake_usage.is_some() => {
                bail!("--fake-usage needs fake GPUs (--fake-gpus or --fake-inventory)")
            }
            SourceSpec::Nvml(_) => nvml_source(),
        }
    }
}

#[cfg(feature = "nvml")]
fn nvml_source() -> anyhow::Result<Option<Arc<dyn UsageSource>>> {
    match crate::usage::NvmlUsageSource::new() {
        Ok(source) => Ok(Some(Arc::new(source))),
        Err(error) => {
            // Discovery already needs NVML; a usage failure must not stop prepare.
            warn!(%error, "per-pod GPU usage is off: NVML did not load");
            Ok(None)
        }
    }
}

#[cfg(not(feature = "nvml"))]
fn nvml_source() -> anyhow::Result<Option<Arc<dyn UsageSource>>> {
    warn!("per-pod GPU usage is off: this tessera was built without NVML support");
    Ok(None)
}

fn read_fake(path: &Path) -> anyhow::Result<Vec<DeviceSample>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read --fake-usage {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_FAKE_USAGE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read --fake-usage {}", path.display()))?;
    if text.len() as u64 > MAX_FAKE_USAGE_BYTES {
        bail!(
            "--fake-usage {} is larger than {MAX_FAKE_USAGE_BYTES} bytes",
            path.display()
        );
    }
    let samples: Vec<DeviceSample> = serde_saphyr::from_str(&text).with_context(|| {
        format!(
            "--fake-usage {} is not a list of device samples",
            path.display()
        )
    })?;
    if samples.len() > crate::usage::MAX_DEVICES {
        bail!(
            "--fake-usage {} lists more than {} devices",
            path.display(),
            crate::usage::MAX_DEVICES
        );
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> UsageArgs {
        UsageArgs {
            host_proc: PathBuf::from("/host/proc"),
            usage_interval: 15,
            usage_max_series: 512,
            fake_usage: None,
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(args().validate().is_ok());
        let relative = UsageArgs {
            host_proc: PathBuf::from("proc"),
            ..args()
        };
        assert!(relative.validate().is_err());
        let zero = UsageArgs {
            usage_max_series: 0,
            ..args()
        };
        assert!(zero.validate().is_err());
        let slow = UsageArgs {
            usage_interval: 7200,
            ..args()
        };
        assert!(slow.validate().is_err());
    }

    #[test]
    fn fake_usage_file_parses_and_bad_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("usage.yaml");
        std::fs::write(
            &good,
            "- uuid: GPU-1\n  utilizationPercent: 40\n  processes:\n    - pid: 12\n      usedMemoryBytes: 1048576\n      smPercent: 30\n",
        )
        .unwrap();
        let samples = read_fake(&good).unwrap();
        assert_eq!(samples[0].processes[0].sm_percent, Some(30));
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "- uuid: GPU-1\n  pids: [1]\n").unwrap();
        let error = read_fake(&bad).unwrap_err().to_string();
        assert!(error.contains("not a list of device samples"), "{error}");
    }
}
