//! `tessera extender`: flags, configuration checks, and the wiring of cache, scoring, HTTP
//! server, admin server and shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use super::{AdminArgs, KubeArgs};
use crate::access::AccessReview;
use crate::admin::{self, AdminOptions, Readiness};
use crate::allocator::Release;
use crate::cluster::{Cache, CacheConfig, READINESS_CONDITIONS};
use crate::extender::cluster_view::{CacheSource, MemoScoring};
use crate::extender::demand::DeviceClasses;
use crate::extender::evaluate::{Scoring, default_typical_pods};
use crate::extender::limits::DEFAULT_QUEUE_WAIT;
use crate::extender::predict::Predictor;
use crate::extender::tls::reload_on_change;
use crate::extender::typical::feed::TypicalMetrics;
use crate::extender::typical::learner::{DEFAULT_MAX_SEEN_PODS, Refresh, TypicalLearner};
use crate::extender::typical::{self, LearnedStats, TypicalHandle, TypicalKind, TypicalModel};
use crate::extender::{
    BodyLimits, Bound, Decide, Decider, ExtenderMetrics, RouteOptions, TlsFiles, attribution,
    router_with, tls_config,
};
use crate::market::{PriceCatalog, SpotAdvisor};
use crate::scoring::frag::online::{DEFAULT_HALF_LIFE_PODS, DEFAULT_MAX_SHAPES};
use crate::scoring::weights::MAX_WEIGHTS_FILE_BYTES;
use crate::scoring::{OnlineError, OnlineWindow, Weights};
use crate::serving::Timeouts;
use crate::shutdown::drain_within;
use crate::sim::typical::REFRESH_EVERY_PODS;

/// Default body limit; the arithmetic behind it is in `docs/extender.md` ("Request limits").
pub use crate::extender::limits::DEFAULT_MAX_BODY_BYTES;
/// Smallest body limit accepted: below it not even one Node object fits.
const MIN_MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body limit accepted.
const MAX_MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// Longest body, header or TLS handshake timeout accepted, seconds.
const MAX_TIMEOUT_SECS: u64 = 300;
/// Longest TLS reload interval accepted, seconds.
const MAX_RELOAD_SECS: u64 = 3600;
/// Most pods between two learned typical-pod models accepted.
const MAX_REFRESH_PODS: u64 = 65_536;
/// Longest access review cache TTL accepted, seconds.
const MAX_ACCESS_TTL_SECS: u64 = 3600;
/// Largest price override file read.
const MAX_PRICES_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Longest URL prefix accepted.
const MAX_PREFIX_LEN: usize = 256;
/// How long requests in flight may take to finish after a shutdown signal.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How often cost attribution gauges are recomputed.
pub const ATTRIBUTION_EVERY: Duration = Duration::from_secs(30);

/// Flags of `tessera extender`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExtenderArgs {
    /// Address the scheduler extender listens on (kube-scheduler's `urlPrefix` points here).
    #[arg(long, env = "TESSERA_EXTENDER_LISTEN", default_value = "0.0.0.0:8888")]
    pub listen: SocketAddr,
    /// Path prefix of the verbs: `<prefix>/filter`, `<prefix>/prioritize`,
    /// `<prefix>/explain`; the path part of kube-scheduler's `urlPrefix`.
    #[arg(long, env = "TESSERA_EXTENDER_URL_PREFIX", default_value = "/")]
    pub url_prefix: String,
    /// PEM certificate chain: serve HTTPS (for `enableHTTPS: true`). Needs --tls-key.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: require every caller to present a client certificate signed by it
    /// (mutual TLS; kube-scheduler's `tlsConfig.certFile`/`keyFile`). Needs --tls-cert.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the admin port (/metrics, /healthz, /readyz) over HTTPS with --tls-cert too
    /// (without client certificates: probes present none), so bearer tokens sent to
    /// /metrics are never in clear.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_ADMIN_TLS",
        requires = "tls_cert",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub admin_tls: bool,
    /// How often the TLS files are re-read; changed files are served from then on, without a
    /// restart (a rotated Secret).
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TLS_RELOAD_INTERVAL",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub tls_reload_interval: u64,
    /// Largest request body accepted, bytes; larger ones get HTTP 413. The default holds a
    /// 5,000-node names-mode request many times over and about 1,500 full Node objects.
    #[arg(long, env = "TESSERA_EXTENDER_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Bytes of request bodies read and decoded at once, all connections together; a request
    /// that does not fit waits up to 1 s, then gets HTTP 503. At least --max-body-bytes;
    /// default twice --max-body-bytes (64 MiB with the default limit).
    #[arg(long, env = "TESSERA_EXTENDER_DECODE_BUDGET_BYTES")]
    pub decode_budget_bytes: Option<usize>,
    /// A request body not complete this long after its headers gets HTTP 408 and its
    /// connection is closed.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_BODY_READ_TIMEOUT",
        default_value_t = 10,
        value_name = "SECONDS"
    )]
    pub body_read_timeout: u64,
    /// A request head not complete this long after the connection starts waiting for it
    /// (new or idle keep-alive) closes the connection; extender and admin ports.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_HEADER_READ_TIMEOUT",
        default_value_t = 10,
        value_name = "SECONDS"
    )]
    pub header_read_timeout: u64,
    /// Guard `/explain` (extender port) and `/metrics` (admin port) with TokenReview and
    /// SubjectAccessReview: a bearer token whose user may `get` the path
    /// (`nonResourceURLs`). `--access-review=false` leaves them open.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_ACCESS_REVIEW",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub access_review: bool,
    /// How long an access review decision (allowed, denied, unauthenticated) is reused.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_ACCESS_REVIEW_TTL",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub access_review_ttl: u64,
    /// Scoring weights, YAML (format in docs/cost-model.md); built-in defaults without it.
    #[arg(long, env = "TESSERA_WEIGHTS", value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// GPU price overrides, CSV with the catalog's columns (docs/cost-model.md §7), merged
    /// over the built-in catalog.
    #[arg(long, env = "TESSERA_PRICES", value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// DRA driver name of tessera's plugin: its ResourceSlices are read, and its DeviceClasses
    /// `<driver>`, `mig.<driver>` and `shared.<driver>` are the GPU requests priced.
    #[arg(long, env = "TESSERA_DRIVER_NAME", default_value = "gpu.tessera.dev")]
    pub driver_name: String,
    /// /readyz turns false when the cluster cache has heard nothing from the API server for
    /// this many seconds (the extender keeps answering from the cache meanwhile).
    #[arg(
        long,
        env = "TESSERA_EXTENDER_STALE_AFTER",
        default_value_t = 120,
        value_name = "SECONDS"
    )]
    pub stale_after: u64,
    /// The scheduler's Kubernetes release, whose slice order and default feature gates the
    /// allocator model follows when it predicts which device a pod gets: `auto` (the API
    /// server's version at start), or `1.34`, `1.35`, `1.36` (and later).
    #[arg(
        long,
        env = "TESSERA_KUBE_VERSION",
        default_value = "auto",
        value_name = "auto|MAJOR.MINOR"
    )]
    pub kube_version: String,
    /// Typical pods the fragmentation term measures against: `online` learns them from the
    /// cluster's recent GPU pods (a decaying window rebuilt from the watch at every start,
    /// the bundled openb trace as the prior); `bundled` keeps the bundled trace's for good.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TYPICAL",
        default_value = "online",
        value_parser = ["online", "bundled"],
        value_name = "online|bundled"
    )]
    pub typical: String,
    /// With `--typical online`: pods after which a learned pod's weight has halved (the
    /// prior starts worth this many pods), 1..=10000000.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TYPICAL_HALF_LIFE",
        default_value_t = DEFAULT_HALF_LIFE_PODS,
        value_name = "PODS"
    )]
    pub typical_half_life: f64,
    /// With `--typical online`: most distinct pod shapes tallied (the lightest is dropped to
    /// make room), 1..=65536.
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TYPICAL_MAX_SHAPES",
        default_value_t = DEFAULT_MAX_SHAPES,
        value_name = "N"
    )]
    pub typical_max_shapes: usize,
    /// With `--typical online`: a new model is published after this many newly learned pods
    /// (1..=65536)...
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TYPICAL_REFRESH_PODS",
        default_value_t = REFRESH_EVERY_PODS,
        value_name = "PODS"
    )]
    pub typical_refresh_pods: u64,
    /// ...or this long after the last one if any pod was learned since (1..=3600).
    #[arg(
        long,
        env = "TESSERA_EXTENDER_TYPICAL_REFRESH_SECONDS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub typical_refresh_seconds: u64,
    /// Admin server.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Kubernetes API access.
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Everything the flags name, read and checked before anything starts.
#[derive(Debug, Clone)]
pub struct ExtenderConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Route prefix, starting with `/`.
    pub url_prefix: String,
    /// HTTPS files.
    pub tls: Option<TlsFiles>,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Body limits, decode budget and body timeout.
    pub limits: BodyLimits,
    /// Connection timeouts of both ports.
    pub timeouts: Timeouts,
    /// How often TLS files are re-read.
    pub tls_reload_interval: Duration,
    /// Whether the admin port serves HTTPS with the extender's certificate.
    pub admin_tls: bool,
    /// Access review TTL; `None` when `/explain` and `/metrics` are open.
    pub access_review_ttl: Option<Duration>,
    /// Blend weights.
    pub weights: Weights,
    /// Price catalog with overrides.
    pub catalog: Arc<PriceCatalog>,
    /// Spot Advisor table.
    pub advisor: Arc<SpotAdvisor>,
    /// Driver name.
    pub driver_name: String,
    /// Readiness staleness threshold.
    pub stale_after: Duration,
    /// The release the allocator model follows; `None`: read it from the API server.
    pub kube_version: Option<Release>,
    /// Where the typical pods come from, and how the online learner runs.
    pub typical: TypicalConfig,
}

/// `--typical` and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TypicalConfig {
    /// Bundled or online.
    pub kind: TypicalKind,
    /// The learner's window (online).
    pub window: OnlineWindow,
    /// When the learner publishes (online).
    pub refresh: Refresh,
}

impl TypicalConfig {
    /// Reads and checks the `--typical*` flags.
    fn from_args(args: &ExtenderArgs) -> anyhow::Result<Self> {
        let kind = TypicalKind::parse(&args.typical).with_context(|| {
            format!(
                "--typical must be online or bundled, got {:?}",
                args.typical
            )
        })?;
        let window = OnlineWindow {
            half_life_pods: args.typical_half_life,
            max_shapes: args.typical_max_shapes,
            prior_pods: args.typical_half_life,
        }
        .validated()
        .map_err(|e| {
            let flag = match e {
                OnlineError::MaxShapes(_) => "--typical-max-shapes",
                OnlineError::HalfLife(_) | OnlineError::PriorWeight(_) => "--typical-half-life",
            };
            anyhow::anyhow!("{flag}: {e}")
        })?;
        if !(1..=MAX_REFRESH_PODS).contains(&args.typical_refresh_pods) {
            anyhow::bail!(
                "--typical-refresh-pods must be 1..={MAX_REFRESH_PODS}, got {}",
                args.typical_refresh_pods
            );
        }
        if !(1..=MAX_RELOAD_SECS).contains(&args.typical_refresh_seconds) {
            anyhow::bail!(
                "--typical-refresh-seconds must be 1..={MAX_RELOAD_SECS}, got {}",
                args.typical_refresh_seconds
            );
        }
        Ok(TypicalConfig {
            kind,
            window,
            refresh: Refresh {
                pods: args.typical_refresh_pods,
                interval: Duration::from_secs(args.typical_refresh_seconds),
            },
        })
    }
}

impl ExtenderConfig {
    /// Reads and checks what `args` name; every error says which flag is wrong.
    pub fn from_args(args: &ExtenderArgs) -> anyhow::Result<Self> {
        let prefix = args.url_prefix.trim();
        if !prefix.starts_with('/') || prefix.len() > MAX_PREFIX_LEN || prefix.contains(['?', '#'])
        {
            anyhow::bail!(
                "--url-prefix must be a path starting with / (at most {MAX_PREFIX_LEN} bytes, no ? or #), got {:?}",
                args.url_prefix
            );
        }
        if !(MIN_MAX_BODY_BYTES..=MAX_MAX_BODY_BYTES).contains(&args.max_body_bytes) {
            anyhow::bail!(
                "--max-body-bytes must be in {MIN_MAX_BODY_BYTES}..={MAX_MAX_BODY_BYTES}, got {}",
                args.max_body_bytes
            );
        }
        let decode_budget_bytes = args
            .decode_budget_bytes
            .unwrap_or(args.max_body_bytes.saturating_mul(2));
        let max_budget = MAX_MAX_BODY_BYTES.saturating_mul(4);
        if decode_budget_bytes < args.max_body_bytes || decode_budget_bytes > max_budget {
            anyhow::bail!(
                "--decode-budget-bytes must be in --max-body-bytes ({})..={max_budget}, got {decode_budget_bytes}",
                args.max_body_bytes,
            );
        }
        for (flag, value, max) in [
            (
                "--body-read-timeout",
                args.body_read_timeout,
                MAX_TIMEOUT_SECS,
            ),
            (
                "--header-read-timeout",
                args.header_read_timeout,
                MAX_TIMEOUT_SECS,
            ),
            (
                "--tls-reload-interval",
                args.tls_reload_interval,
                MAX_RELOAD_SECS,
            ),
            (
                "--access-review-ttl",
                args.access_review_ttl,
                MAX_ACCESS_TTL_SECS,
            ),
        ] {
            if value == 0 || value > max {
                anyhow::bail!("{flag} must be 1..={max} seconds, got {value}");
            }
        }
        if args.stale_after == 0 || args.stale_after > 86_400 {
            anyhow::bail!(
                "--stale-after must be 1..=86400 seconds, got {}",
                args.stale_after
            );
        }
        if args.driver_name.is_empty()
            || args.driver_name.len() > 63
            || !args
                .driver_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            anyhow::bail!(
                "--driver-name must be a DNS subdomain of at most 63 characters, got {:?}",
                args.driver_name
            );
        }
        let kube_version = match args.kube_version.trim() {
            "auto" => None,
            text => Some(Release::parse(text).with_context(|| {
                format!(
                    "--kube-version must be auto or a release from 1.34 on (1.34, 1.35, 1.36, …), got {text:?}"
                )
            })?),
        };
        let weights = match &args.weights {
            None => Weights::default(),
            Some(path) => {
                let text = read_bounded(path, MAX_WEIGHTS_FILE_BYTES as u64, "--weights")?;
                Weights::from_yaml(&text, &path.display().to_string()).context("--weights")?
            }
        };
        let mut catalog = PriceCatalog::builtin().context("built-in price catalog")?;
        if let Some(path) = &args.prices {
            let text = read_bounded(path, MAX_PRICES_FILE_BYTES, "--prices")?;
            let overrides =
                PriceCatalog::from_csv_reader(text.as_bytes(), &path.display().to_string())
                    .context("--prices")?;
            catalog = catalog.merged_with(overrides);
        }
        let advisor = SpotAdvisor::builtin().context("built-in Spot Advisor table")?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            }),
            _ => None,
        };
        Ok(ExtenderConfig {
            listen: args.listen,
            url_prefix: prefix.to_owned(),
            tls,
            max_body_bytes: args.max_body_bytes,
            limits: BodyLimits {
                max_body_bytes: args.max_body_bytes,
                decode_budget_bytes,
                body_read_timeout: Duration::from_secs(args.body_read_timeout),
                queue_wait: DEFAULT_QUEUE_WAIT,
            },
            timeouts: Timeouts {
                header_read: Duration::from_secs(args.header_read_timeout),
                ..Timeouts::default()
            },
            tls_reload_interval: Duration::from_secs(args.tls_reload_interval),
            admin_tls: args.admin_tls,
            access_review_ttl: args
                .access_review
                .then(|| Duration::from_secs(args.access_review_ttl)),
            weights,
            catalog: Arc::new(catalog),
            advisor: Arc::new(advisor),
            driver_name: args.driver_name.clone(),
            stale_after: Duration::from_secs(args.stale_after),
            kube_version,
            typical: TypicalConfig::from_args(args)?,
        })
    }
}

/// The readiness condition `--stale-after` drives.
pub const FRESH_CONDITION: &str = "cluster-cache-fresh";
/// How often the cache's staleness is checked against `--stale-after`.
const FRESHNESS_EVERY: Duration = Duration::from_secs(5);

/// Runs the extender until SIGTERM or SIGINT; errors are for the user (bad flags or files, a
/// taken port, no cluster).
pub fn run(args: &ExtenderArgs) -> anyhow::Result<()> {
    let config = ExtenderConfig::from_args(args)?;
    let tls = config.tls.as_ref().map(tls_config).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera-extender")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config, tls))
}

async fn serve(
    args: &ExtenderArgs,
    config: ExtenderConfig,
    tls: Option<RustlsConfig>,
) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal().context("cannot watch for signals")?;
    // Bind first: a taken port is the most common start-up mistake and needs no cluster.
    let bound = Bound::bind(config.listen)?.with_timeouts(config.timeouts);
    let client = args.kube.client().await?;
    let access = config
        .access_review_ttl
        .map(|ttl| AccessReview::new(client.clone(), ttl));
    if let (Some(tls), Some(files)) = (&tls, &config.tls) {
        tokio::spawn(reload_on_change(
            tls.clone(),
            files.clone(),
            config.tls_reload_interval,
            shutdown.clone(),
        ));
    }
    // The admin port never asks for client certificates: the kubelet's probes have none.
    let admin_tls = match (&config.tls, config.admin_tls) {
        (Some(files), true) => {
            let files = TlsFiles::server_only(files.cert.clone(), files.key.clone());
            let admin = tls_config(&files)?;
            tokio::spawn(reload_on_change(
                admin.clone(),
                files,
                config.tls_reload_interval,
                shutdown.clone(),
            ));
            Some(admin)
        }
        _ => None,
    };
    let release = match config.kube_version {
        Some(release) => release,
        None => {
            let version = client
                .apiserver_version()
                .await
                .context("reading the API server version for --kube-version auto")?;
            let text = format!("{}.{}", version.major, version.minor);
            Release::parse(&text).with_context(|| {
                format!("the API server is Kubernetes {text}; tessera needs 1.34 or later")
            })?
        }
    };
    info!(
        release = release.label(),
        "allocator model follows this release"
    );

    let mut conditions: Vec<&'static str> = READINESS_CONDITIONS.to_vec();
    conditions.push(FRESH_CONDITION);
    let readiness = Readiness::new(&conditions);
    let mut registry = Registry::default();
    let classes = DeviceClasses::new(&config.driver_name);
    let cache = Cache::start(
        client,
        CacheConfig {
            driver: Arc::from(config.driver_name.as_str()),
            catalog: Arc::clone(&config.catalog),
            advisor: Arc::clone(&config.advisor),
        },
        readiness.clone(),
        shutdown.clone(),
    );
    cache.register_metrics(&mut registry);
    let metrics = ExtenderMetrics::register(&mut registry);
    let typical = typical_scoring(&config, &classes, &cache, &mut registry, shutdown.clone())?;
    let decider = Arc::new(Decider::new(
        CacheSource::new(cache.clone(), classes.clone()),
        MemoScoring::new(
            Scoring::with_typical(config.weights, typical)
                .with_predictor(Predictor::new(release, &config.driver_name)),
        ),
        classes,
        Arc::clone(&config.catalog),
        Arc::clone(&config.advisor),
    ));
    let app = router_with(
        &config.url_prefix,
        Arc::clone(&decider) as Arc<dyn Decide>,
        metrics.clone(),
        RouteOptions {
            limits: config.limits,
            explain_access: access.clone(),
        },
    );

    let admin = tokio::spawn(admin::serve_with(
        args.admin.admin_addr,
        Arc::new(registry),
        readiness.clone(),
        shutdown.clone(),
        AdminOptions {
            timeouts: config.timeouts,
            metrics_access: access,
            tls: admin_tls,
        },
    ));
    tokio::spawn(attribution::run(
        decider,
        metrics,
        ATTRIBUTION_EVERY,
        shutdown.clone(),
    ));
    tokio::spawn(freshness(
        cache,
        readiness,
        config.stale_after,
        shutdown.clone(),
    ));

    info!(
        listen = %bound.local_addr(),
        prefix = %config.url_prefix,
        driver = %config.driver_name,
        mutual_tls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        access_review = config.access_review_ttl.is_some(),
        "tessera extender starting"
    );
    let served = bound.serve(app, tls, shutdown.clone(), DRAIN_GRACE);
    tokio::pin!(served);
    let mut admin = admin;
    tokio::select! {
        result = &mut served => {
            shutdown.cancel();
            result?;
            // The admin server stops on the same token; give it the same grace.
            if let Some(joined) = drain_within(DRAIN_GRACE, &mut admin).await {
                joined.context("admin server task")??;
            }
        }
        result = &mut admin => {
            // The admin server ends before shutdown only on an error (its port taken).
            shutdown.cancel();
            let admin_result = result.context("admin server task");
            served.await?;
            admin_result??;
        }
    }
    info!("tessera extender stopped");
    Ok(())
}

/// The typical pods scoring measures fragmentation against: the bundled trace's, or (online)
/// a handle the learner, started here on the cache, keeps publishing to.
fn typical_scoring(
    config: &ExtenderConfig,
    classes: &DeviceClasses,
    cache: &Cache,
    registry: &mut Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<TypicalHandle> {
    let prior = default_typical_pods().context("bundled typical pods")?;
    let fragmentation = config.weights.fragmentation;
    let metrics = TypicalMetrics::register(registry);
    let TypicalConfig {
        kind,
        window,
        refresh,
    } = config.typical;
    if kind == TypicalKind::Bundled {
        let model = TypicalModel::new(
            TypicalKind::Bundled,
            0,
            prior,
            fragmentation,
            LearnedStats::default(),
        );
        return Ok(TypicalHandle::new(model));
    }
    let learner = TypicalLearner::new(
        &prior,
        window,
        fragmentation,
        classes.clone(),
        DEFAULT_MAX_SEEN_PODS,
    )
    .context("--typical online")?;
    let handle = TypicalHandle::new(learner.prior_model());
    info!(
        half_life_pods = window.half_life_pods,
        max_shapes = window.max_shapes,
        refresh_pods = refresh.pods,
        refresh_seconds = refresh.interval.as_secs(),
        "typical pods learned online from the cluster, the bundled trace as the prior"
    );
    tokio::spawn(
        typical::feed::run(
            learner,
            cache.clone(),
            handle.clone(),
            refresh,
            metrics,
            shutdown,
        )
        .instrument(info_span!(
            "typical_learner",
            half_life_pods = window.half_life_pods
        )),
    );
    Ok(handle)
}

/// Keeps [`FRESH_CONDITION`] false while some watcher has been failing for longer than
/// `stale_after` (the cache keeps serving what it has meanwhile).
async fn freshness(
    cache: Cache,
    readiness: Readiness,
    stale_after: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(FRESHNESS_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stale: Vec<String> = cache
            .health()
            .into_iter()
            .filter_map(|h| {
                let for_ = h.stale_for.filter(|d| *d > stale_after)?;
                Some(format!(
                    "{} failing for {}s",
                    h.kind.as_str(),
                    for_.as_secs()
                ))
            })
            .collect();
        if stale.is_empty() {
            readiness.set(
                FRESH_CONDITION,
                true,
                format!("no watcher failing for over {}s", stale_after.as_secs()),
            );
        } else {
            readiness.set(FRESH_CONDITION, false, stale.join("; "));
        }
    }
}

/// The text of `path`, refusing files larger than `max` bytes.
fn read_bounded(path: &Path, max: u64, flag: &str) -> anyhow::Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}", path.display()))?
        .len();
    if size > max {
        anyhow::bail!(
            "{flag} {}: {size} bytes is more than the {max} accepted",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))
}

#[cfg(test)]
mod tests;
