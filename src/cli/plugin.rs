//! `tessera plugin`: flags, validation before the runtime starts, and the wiring of
//! discovery, GPU control, claim source and publisher into [`plugin::runtime`].
//!
//! [`plugin::runtime`]: crate::plugin::runtime

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use super::discovery::DiscoveryArgs;
use super::publish::PublishArgs;
use super::usage::UsageArgs;
use super::{AdminArgs, KubeArgs};
use crate::admin::{self, Readiness};
use crate::discovery::{self, DeviceSource, SourceSpec};
use crate::plugin::runtime::{self, PluginConfig, PluginParts};
use crate::plugin::{READY_CHECKPOINT, READY_MPS, READY_REGISTERED, READY_SOCKETS, SocketPaths};
use crate::prepare::mps::DEFAULT_CONTROL_BINARY;
use crate::prepare::{FakeGpuControl, GpuControl, KubeClaimSource, MpsConfig, PrepareMetrics};
use crate::publish::{PublishMetrics, Publisher, READINESS_CONDITION as READY_PUBLISHED};
use crate::shutdown;

/// How often the GPUs are discovered again (a GPU lost, static MIG re-partitioned).
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);
/// How often abandoned half-prepared claims are looked for.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);
/// How often the MPS control daemons are checked and dead ones restarted.
const MPS_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How long in-flight kubelet calls may take after SIGTERM (the kubelet's own call timeout
/// is 45 s; the DaemonSet's grace period must exceed this).
const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// Flags of `tessera plugin`.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginArgs {
    /// This node's name (the pool name of its ResourceSlices).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Where the GPUs come from.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Driver name, share replicas, feature level, resync.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Directory the kubelet watches for registration sockets.
    #[arg(
        long,
        env = "TESSERA_PLUGIN_REGISTRY_DIR",
        default_value = "/var/lib/kubelet/plugins_registry"
    )]
    pub plugin_registry_dir: PathBuf,
    /// Directory of the DRA service socket (default: `/var/lib/kubelet/plugins/<driver-name>`).
    #[arg(long, env = "TESSERA_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Directory of the per-claim CDI specs.
    #[arg(long, env = "TESSERA_CDI_DIR", default_value = "/var/run/cdi")]
    pub cdi_dir: PathBuf,
    /// Directory of the checkpoint and its lock (default: the plugin dir).
    #[arg(long, env = "TESSERA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// This pod's UID: per-pod socket names, so two instances can run during a rolling update.
    #[arg(long, env = "POD_UID")]
    pub pod_uid: Option<String>,
    /// Root of the MPS control daemons' pipe, log and shared-memory directories: the same
    /// path on the host and in the container, since client containers mount from it
    /// (default: `<state-dir>/mps`).
    #[arg(long, env = "TESSERA_MPS_ROOT")]
    pub mps_root: Option<PathBuf>,
    /// `nvidia-cuda-mps-control` (a path, or a name looked up on PATH), started per GPU or
    /// MIG instance with prepared MPS shares; MPS claims fail prepare while it is missing.
    #[arg(long, env = "TESSERA_MPS_CONTROL_BINARY", default_value = DEFAULT_CONTROL_BINARY)]
    pub mps_control_binary: PathBuf,
    /// `nvidia-smi`, used to set time-slice intervals on real GPUs.
    #[arg(long, env = "TESSERA_NVIDIA_SMI", default_value = "nvidia-smi")]
    pub nvidia_smi: PathBuf,
    /// Per-pod GPU usage.
    #[command(flatten)]
    pub usage: UsageArgs,
    /// Admin server.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// API server access.
    #[command(flatten)]
    pub kube: KubeArgs,
}

impl PluginArgs {
    /// The DRA driver name.
    pub fn driver_name(&self) -> &str {
        &self.publish.shape.driver_name
    }

    /// The plugin directory, defaulting to the kubelet's directory for this driver.
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugin_dir
            .clone()
            .unwrap_or_else(|| Path::new("/var/lib/kubelet/plugins").join(self.driver_name()))
    }

    /// Everything that can be checked without a runtime.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_dns_subdomain("--node-name", &self.node_name, 253)?;
        check_dns_subdomain("--driver-name", self.driver_name(), 63)?;
        self.usage.validate()?;
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
            ("--mps-root", self.mps_root.as_ref()),
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
    let spec = args.discovery.spec(&args.node_name);
    let source: Arc<dyn DeviceSource> = Arc::from(discovery::open(&spec)?);
    let control = control(args, &spec)?;
    // A small runtime: the plugin answers a handful of kubelet calls, and every worker
    // thread costs resident memory on every GPU node.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, &spec, source, control))
}

async fn serve(
    args: &PluginArgs,
    spec: &SourceSpec,
    source: Arc<dyn DeviceSource>,
    control: Arc<dyn GpuControl>,
) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal().context("cannot install signal handlers")?;
    let client = args.kube.client().await?;
    let readiness = Readiness::new(&[
        READY_SOCKETS,
        READY_REGISTERED,
        READY_PUBLISHED,
        READY_CHECKPOINT,
        READY_MPS,
    ]);
    let mut registry = Registry::default();
    let prepare_metrics = PrepareMetrics::register(&mut registry);
    let publish_metrics = PublishMetrics::register(&mut registry);
    let usage_metrics = UsageArgs::register(&mut registry);
    let admin = tokio::spawn(admin::serve(
        args.admin.admin_addr,
        Arc::new(registry),
        readiness.clone(),
        shutdown.clone(),
    ));

    let described = source.describe();
    let (inventory, discovery_task) = discovery::poll(source, DISCOVERY_INTERVAL, shutdown.clone())
        .await
        .with_context(|| format!("discovering GPUs from {described}"))?;
    let publisher = Publisher::new(
        client.clone(),
        args.publish.publisher_config(&args.node_name),
    )
    .with_metrics(publish_metrics)
    .run(inventory.clone(), readiness.clone(), shutdown.clone());

    let plugin_dir = args.plugin_dir();
    let state_dir = args.state_dir.clone().unwrap_or(plugin_dir.clone());
    let config = PluginConfig {
        node_name: args.node_name.clone(),
        driver: args.driver_name().to_owned(),
        sockets: SocketPaths::new(
            &args.plugin_registry_dir,
            &plugin_dir,
            args.driver_name(),
            args.pod_uid.as_deref(),
        ),
        cdi_dir: args.cdi_dir.clone(),
        mps: MpsConfig {
            root: args
                .mps_root
                .clone()
                .unwrap_or_else(|| state_dir.join("mps")),
            control_binary: args.mps_control_binary.clone(),
        },
        mps_check_interval: MPS_CHECK_INTERVAL,
        state_dir,
        share_replicas: args.publish.shape.share_replicas,
        boot_id: boot_id(),
        recovery_interval: RECOVERY_INTERVAL,
        drain_grace: DRAIN_GRACE,
        serve_health: true,
    };
    info!(node = %config.node_name, driver = %config.driver, source = %described, "starting the kubelet plugin");
    let claims: Arc<KubeClaimSource> = Arc::new(KubeClaimSource::new(client.clone()));
    let usage = args.usage.start(
        spec,
        &config.state_dir,
        UsageArgs::namer(claims.clone(), client),
        inventory.clone(),
        usage_metrics,
        shutdown.clone(),
    )?;
    let parts = PluginParts {
        inventory,
        control,
        claims,
        publisher: Box::pin(publisher),
    };
    runtime::run(config, parts, prepare_metrics, readiness, shutdown).await?;
    discovery_task.abort();
    if let Some(usage) = usage {
        usage.abort();
    }
    match admin.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(anyhow::anyhow!("admin server task failed: {e}")),
    }
}

/// The hands that change GPUs: the fake for fake GPUs, NVML for real ones.
fn control(args: &PluginArgs, spec: &SourceSpec) -> anyhow::Result<Arc<dyn GpuControl>> {
    match spec {
        SourceSpec::Profile { .. } | SourceSpec::File(_) => Ok(Arc::new(FakeGpuControl::new())),
        SourceSpec::Nvml(_) => nvml_control(args),
    }
}

#[cfg(feature = "nvml")]
fn nvml_control(args: &PluginArgs) -> anyhow::Result<Arc<dyn GpuControl>> {
    Ok(Arc::new(crate::prepare::control::NvmlGpuControl::new(
        args.nvidia_smi.clone(),
    )?))
}

#[cfg(not(feature = "nvml"))]
fn nvml_control(_: &PluginArgs) -> anyhow::Result<Arc<dyn GpuControl>> {
    // Unreachable in practice: discovery::open refuses NVML first with the same advice.
    bail!(
        "this build has no NVML support: rebuild with `cargo build --features nvml`, or use fake GPUs with --fake-gpus PROFILE or --fake-inventory FILE"
    )
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
    use crate::publish::FeatureChoice;

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
        assert_eq!(args.driver_name(), "gpu.tessera.dev");
        assert_eq!(
            args.plugin_registry_dir,
            Path::new("/var/lib/kubelet/plugins_registry")
        );
        assert_eq!(
            args.plugin_dir(),
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev")
        );
        assert_eq!(args.cdi_dir, Path::new("/var/run/cdi"));
        assert_eq!(args.publish.features, FeatureChoice::Auto);
        assert_eq!(args.pod_uid, None);
        args.validate().unwrap();

        let custom = parse(&["--node-name", "n", "--driver-name", "gpu.example.com"]).unwrap();
        assert_eq!(
            custom.plugin_dir(),
            Path::new("/var/lib/kubelet/plugins/gpu.example.com")
        );
    }

    #[test]
    fn bad_values_are_refused_before_anything_starts() {
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
    fn fake_gpus_get_the_fake_control_and_no_nvml_says_which_feature() {
        let args = parse(&["--node-name", "n", "--fake-gpus", "h100x8"]).unwrap();
        assert!(control(&args, &args.discovery.spec("n")).is_ok());
        #[cfg(not(feature = "nvml"))]
        {
            let real = parse(&["--node-name", "n"]).unwrap();
            let err = control(&real, &real.discovery.spec("n")).err().unwrap();
            assert!(err.to_string().contains("--features nvml"), "{err}");
        }
    }
}
