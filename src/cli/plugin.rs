//! `tessera plugin`: flags, validation before the runtime starts, and the wiring of
//! discovery, GPU control, claim source and publisher into [`plugin::runtime`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use super::{AdminArgs, KubeArgs};
use crate::admin::{self, Readiness};
use crate::model::Inventory;
use crate::plugin::runtime::{self, PluginConfig, PluginParts, READY_PUBLISHED};
use crate::plugin::{READY_REGISTERED, READY_SOCKETS, SocketPaths};
use crate::prepare::{FakeGpuControl, GpuControl, KubeClaimSource, PrepareMetrics};
use crate::shutdown;

/// Default DRA driver name.
pub const DEFAULT_DRIVER: &str = "gpu.tessera.dev";
/// Largest `--fake-inventory` file read.
const MAX_INVENTORY_BYTES: u64 = 1 << 20;
/// Most GPUs one node may report.
const MAX_GPUS: usize = 64;

/// Flags of `tessera plugin`.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginArgs {
    /// This node's name (the pool name of its ResourceSlices).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// DRA driver name: a DNS subdomain of at most 63 characters.
    #[arg(long, env = "TESSERA_DRIVER_NAME", default_value = DEFAULT_DRIVER)]
    pub driver_name: String,
    /// Directory the kubelet watches for registration sockets.
    #[arg(
        long,
        env = "TESSERA_PLUGIN_REGISTRY_DIR",
        default_value = "/var/lib/kubelet/plugins_registry"
    )]
    pub plugin_registry_dir: PathBuf,
    /// Directory of the DRA service socket [default: /var/lib/kubelet/plugins/<driver-name>].
    #[arg(long, env = "TESSERA_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Directory of the per-claim CDI specs.
    #[arg(long, env = "TESSERA_CDI_DIR", default_value = "/var/run/cdi")]
    pub cdi_dir: PathBuf,
    /// Directory of the checkpoint and its lock [default: the plugin dir].
    #[arg(long, env = "TESSERA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// This pod's UID: per-pod socket names, so two instances can run during a rolling update.
    #[arg(long, env = "POD_UID")]
    pub pod_uid: Option<String>,
    /// Use built-in fake GPUs (e.g. h100x8) instead of NVML.
    #[arg(
        long,
        env = "TESSERA_FAKE_GPUS",
        value_name = "PROFILE",
        conflicts_with = "fake_inventory"
    )]
    pub fake_gpus: Option<String>,
    /// Use fake GPUs described in a YAML or JSON inventory file instead of NVML.
    #[arg(long, env = "TESSERA_FAKE_INVENTORY", value_name = "FILE")]
    pub fake_inventory: Option<PathBuf>,
    /// Which Kubernetes DRA features the published devices use.
    #[arg(long, env = "TESSERA_FEATURES", value_enum, default_value_t = FeatureLevel::Auto)]
    pub features: FeatureLevel,
    /// Time-sliced replicas advertised per GPU as `gpu-<i>-share-<k>` devices.
    #[arg(long, env = "TESSERA_SHARE_REPLICAS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=32))]
    pub share_replicas: u32,
    /// `nvidia-smi`, used to set time-slice intervals on real GPUs.
    #[arg(long, env = "TESSERA_NVIDIA_SMI", default_value = "nvidia-smi")]
    pub nvidia_smi: PathBuf,
    /// Admin server.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// API server access.
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Kubernetes DRA feature levels for publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeatureLevel {
    /// Read the API server's version and use what it has on by default.
    Auto,
    /// GA only (1.34+): whole GPUs, static MIG, legacy shares.
    Ga,
    /// Plus partitionable devices: dynamic MIG with shared counters.
    Partitionable,
    /// Plus consumable capacity: `shared` devices.
    Consumable,
}

impl PluginArgs {
    /// The plugin directory, defaulting to the kubelet's directory for this driver.
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugin_dir
            .clone()
            .unwrap_or_else(|| Path::new("/var/lib/kubelet/plugins").join(&self.driver_name))
    }

    /// Everything that can be checked without a runtime.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_dns_subdomain("--node-name", &self.node_name, 253)?;
        check_dns_subdomain("--driver-name", &self.driver_name, 63)?;
        if let Some(uid) = &self.pod_uid
            && (uid.len() > 64 || !uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            bail!("--pod-uid {uid:?} is not a pod UID");
        }
        for (flag, dir) in [
            ("--plugin-registry-dir", Some(&self.plugin_registry_dir)),
            ("--plugin-dir", self.plugin_dir.as_ref()),
            ("--cdi-dir", Some(&self.cdi_dir)),
            ("--state-dir", self.state_dir.as_ref()),
        ] {
            if let Some(dir) = dir
                && !dir.is_absolute()
            {
                bail!(
                    "{flag} {} must be an absolute path (the kubelet sees the same path)",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

fn check_dns_subdomain(flag: &str, value: &str, max: usize) -> anyhow::Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !ok {
        bail!("{flag} {value:?} is not a DNS subdomain of at most {max} characters");
    }
    Ok(())
}

/// Run `tessera plugin` until SIGTERM or SIGINT.
pub fn run(args: &PluginArgs) -> anyhow::Result<()> {
    args.validate()?;
    let (inventory, control) = hardware(args)?;
    // A small runtime: the plugin answers a handful of kubelet calls, and every worker
    // thread costs resident memory on every GPU node.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, inventory, control))
}

async fn serve(
    args: &PluginArgs,
    inventory: Inventory,
    control: Arc<dyn GpuControl>,
) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal().context("cannot install signal handlers")?;
    let client = args.kube.client().await?;
    let readiness = Readiness::new(&[READY_SOCKETS, READY_REGISTERED, READY_PUBLISHED]);
    let mut registry = Registry::default();
    let metrics = PrepareMetrics::register(registry.sub_registry_with_prefix("tessera_plugin"));
    let registry = Arc::new(registry);
    let admin = tokio::spawn(admin::serve(
        args.admin.admin_addr,
        registry,
        readiness.clone(),
        shutdown.clone(),
    ));

    let plugin_dir = args.plugin_dir();
    let config = PluginConfig {
        node_name: args.node_name.clone(),
        driver: args.driver_name.clone(),
        sockets: SocketPaths::new(
            &args.plugin_registry_dir,
            &plugin_dir,
            &args.driver_name,
            args.pod_uid.as_deref(),
        ),
        cdi_dir: args.cdi_dir.clone(),
        state_dir: args.state_dir.clone().unwrap_or(plugin_dir),
        share_replicas: args.share_replicas,
        boot_id: boot_id(),
        recovery_interval: Duration::from_secs(60),
        drain_grace: Duration::from_secs(20),
    };
    info!(node = %config.node_name, driver = %config.driver, gpus = inventory.gpus.len(), "starting the kubelet plugin");
    let publisher = publisher(args, &readiness);
    let parts = PluginParts {
        inventory,
        control,
        claims: Arc::new(KubeClaimSource::new(client)),
        publisher,
    };
    runtime::run(config, parts, metrics, readiness, shutdown).await?;
    match admin.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(anyhow::anyhow!("admin server task failed: {e}")),
    }
}

/// The GPUs and the means to change them: fakes when asked, NVML otherwise.
fn hardware(args: &PluginArgs) -> anyhow::Result<(Inventory, Arc<dyn GpuControl>)> {
    if let Some(path) = &args.fake_inventory {
        return Ok((read_inventory(path)?, Arc::new(FakeGpuControl::new())));
    }
    if let Some(profile) = &args.fake_gpus {
        bail!(
            "--fake-gpus {profile}: fake GPU profiles come with the discovery module, which this build does not have yet; use --fake-inventory FILE"
        );
    }
    nvml_hardware(args)
}

#[cfg(feature = "nvml")]
fn nvml_hardware(args: &PluginArgs) -> anyhow::Result<(Inventory, Arc<dyn GpuControl>)> {
    let _control = crate::prepare::control::NvmlGpuControl::new(args.nvidia_smi.clone())?;
    bail!(
        "GPU discovery through NVML comes with the discovery module, which this build does not have yet; use --fake-inventory FILE"
    )
}

#[cfg(not(feature = "nvml"))]
fn nvml_hardware(_: &PluginArgs) -> anyhow::Result<(Inventory, Arc<dyn GpuControl>)> {
    bail!(
        "this build has no NVML support: rebuild with `cargo build --features nvml`, or use fake GPUs with --fake-gpus PROFILE or --fake-inventory FILE"
    )
}

/// A fake inventory from a YAML or JSON file (the [`Inventory`] schema, camelCase).
pub fn read_inventory(path: &Path) -> anyhow::Result<Inventory> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_INVENTORY_BYTES {
        bail!(
            "{} is {size} bytes, more than {MAX_INVENTORY_BYTES}",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let inventory: Inventory = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not an inventory", path.display()))?;
    if inventory.gpus.len() > MAX_GPUS {
        bail!(
            "{} lists {} GPUs, more than {MAX_GPUS}",
            path.display(),
            inventory.gpus.len()
        );
    }
    let mut indexes: Vec<u32> = inventory.gpus.iter().map(|g| g.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.len() != inventory.gpus.len() {
        bail!("{} lists a GPU index twice", path.display());
    }
    Ok(inventory)
}

/// The ResourceSlice publisher.
///
/// SEAM: the publisher lives in `src/publish/` (feat/publish). Until it is merged this build
/// does not publish, says so in `/readyz`, and waits for shutdown; the lead replaces this
/// body with the publisher's future (it sets [`READY_PUBLISHED`] itself).
fn publisher(args: &PluginArgs, readiness: &Readiness) -> futures::future::BoxFuture<'static, ()> {
    warn!(features = ?args.features, "this build has no ResourceSlice publisher");
    readiness.set(
        READY_PUBLISHED,
        false,
        "no ResourceSlice publisher in this build",
    );
    Box::pin(std::future::pending())
}

/// This boot's ID; after a reboot, nothing prepared before it exists any more.
fn boot_id() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(id) => id.trim().to_owned(),
        Err(error) => {
            warn!(%error, "cannot read the boot ID; reboots will not be detected");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<PluginArgs, clap::Error> {
        let mut argv = vec!["tessera", "plugin"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Plugin(args) => args,
            other => panic!("parsed {other:?}"),
        })
    }

    #[test]
    fn defaults_follow_the_kubelet_layout() {
        let args = parse(&["--node-name", "node-a"]).unwrap();
        assert_eq!(args.driver_name, "gpu.tessera.dev");
        assert_eq!(
            args.plugin_registry_dir,
            Path::new("/var/lib/kubelet/plugins_registry")
        );
        assert_eq!(
            args.plugin_dir(),
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev")
        );
        assert_eq!(args.cdi_dir, Path::new("/var/run/cdi"));
        assert_eq!(args.share_replicas, 4);
        assert_eq!(args.features, FeatureLevel::Auto);
        args.validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused_before_anything_starts() {
        assert!(parse(&["--node-name", "n", "--share-replicas", "0"]).is_err());
        assert!(parse(&["--node-name", "n", "--features", "everything"]).is_err());
        assert!(
            parse(&[
                "--node-name",
                "n",
                "--fake-gpus",
                "h100x8",
                "--fake-inventory",
                "/x"
            ])
            .is_err()
        );
        for bad in [
            vec!["--node-name", "Node_A"],
            vec!["--node-name", "n", "--driver-name=-gpu.example.com"],
            vec!["--node-name", "n", "--pod-uid", "../../x"],
            vec!["--node-name", "n", "--cdi-dir", "relative/cdi"],
        ] {
            let args = parse(&bad).unwrap();
            assert!(args.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inventories_are_read_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("inv.yaml");
        std::fs::write(
            &good,
            "driverVersion: 580.65.06\ngpus:\n- index: 0\n  uuid: GPU-a\n  pciBusId: '0000:3b:00.0'\n  productName: NVIDIA H100 80GB HBM3\n  memoryBytes: 85899345920\n  architecture: Hopper\n  cudaComputeCapability: '9.0'\n",
        )
        .unwrap();
        let inv = read_inventory(&good).unwrap();
        assert_eq!(inv.gpus[0].uuid, "GPU-a");

        let twice = dir.path().join("twice.yaml");
        let text = std::fs::read_to_string(&good).unwrap();
        let gpu = text.split_once("gpus:\n").unwrap().1;
        std::fs::write(&twice, format!("{text}{gpu}")).unwrap();
        assert!(
            read_inventory(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(read_inventory(&dir.path().join("missing.yaml")).is_err());
    }
}
