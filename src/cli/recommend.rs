//! `tessera recommend`: right-size GPU allocations from the usage Prometheus recorded.
//!
//! Reads the plugin's held-device and usage series (and, when present, the extender's cost
//! and kube-state-metrics' owners) over a window, then prints one recommendation per
//! workload and the idle allocations (`crate::rightsize`).

mod gather;
pub mod queries;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tracing::info_span;

use crate::market::PriceCatalog;
use crate::promql::Client;
use crate::rightsize::{Kinds, Rules, Window, recommend, render_openmetrics, render_table};

/// Longest `--window`: 90 days (Prometheus's retention is usually shorter).
const MAX_WINDOW_SECONDS: u64 = 90 * 86_400;
/// Most subquery points per series (`--window` / `--step`).
const MAX_POINTS: u64 = 50_000;
/// Longest per-query `--timeout`, seconds.
const MAX_TIMEOUT_SECONDS: u64 = 600;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text with the YAML of each change.
    Table,
    /// One JSON document (schema in docs/recommend.md).
    Json,
    /// OpenMetrics gauges of the costs, savings and idle allocations, for a textfile
    /// collector or a Pushgateway (Grafana's savings panels read them).
    Openmetrics,
}

/// Flags of `tessera recommend`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecommendArgs {
    /// Prometheus base URL, e.g. `http://prometheus.monitoring:9090` (plain HTTP; use
    /// `kubectl port-forward` for a server outside reach).
    #[arg(long, env = "TESSERA_PROMETHEUS_URL")]
    pub prometheus: String,
    /// How far back to look, in Prometheus duration syntax (`7d`, `36h`, `90m`).
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// End of the window: RFC 3339 (`2026-12-01T00:00:00Z`) or Unix seconds; default now.
    #[arg(long)]
    pub end: Option<String>,
    /// Resolution of the percentiles' subqueries; at least the plugin's usage interval.
    #[arg(long, default_value = "1m")]
    pub step: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Memory kept above the peak when sizing, as a fraction of it (0.2 = 20 %).
    #[arg(long, default_value_t = 0.2)]
    pub headroom: f64,
    /// Peak compute, percent of the device, at or below which a held device counts as unused.
    #[arg(long, default_value_t = 1.0)]
    pub idle_threshold: f64,
    /// How long a device must have been held and unused to be listed as idle.
    #[arg(long, default_value = "24h")]
    pub idle_for: String,
    /// Partitions a workload may be moved to besides a whole GPU: `mig`, `shared`, both
    /// (comma-separated) or none (empty).
    #[arg(long, default_value = "mig,shared")]
    pub partition_kinds: String,
    /// The DRA driver name the plugin runs under: the attribute domain and the base of the
    /// DeviceClass names in the printed ResourceClaimTemplates.
    #[arg(long, default_value = "gpu.tessera.dev")]
    pub driver_name: String,
    /// Seconds each Prometheus query may take (Prometheus's own query timeout is 2 minutes).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Most series one Prometheus answer may hold.
    #[arg(long, default_value_t = crate::promql::DEFAULT_MAX_SERIES)]
    pub max_series: usize,
}

/// Queries Prometheus and prints the report.
pub fn run(args: &RecommendArgs) -> anyhow::Result<()> {
    let window = duration_seconds(&args.window).context("--window")?;
    let step = duration_seconds(&args.step).context("--step")?;
    let idle_for = duration_seconds(&args.idle_for).context("--idle-for")?;
    if window > MAX_WINDOW_SECONDS {
        bail!("--window {} is longer than 90d", args.window);
    }
    if idle_for > window {
        bail!(
            "--idle-for {} is longer than --window {}",
            args.idle_for,
            args.window
        );
    }
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&args.timeout) {
        bail!("--timeout must be 1 to {MAX_TIMEOUT_SECONDS} seconds");
    }
    if !(1..=1_000_000).contains(&args.max_series) {
        bail!("--max-series must be 1 to 1000000");
    }
    gather::check_points(window, step, MAX_POINTS)?;
    let rules = Rules {
        headroom: args.headroom,
        kinds: Kinds::parse(&args.partition_kinds).context("--partition-kinds")?,
        idle_threshold_percent: args.idle_threshold,
        idle_for_seconds: idle_for as f64,
    };
    rules.validate()?;
    if args.driver_name.is_empty()
        || !args
            .driver_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        bail!(
            "--driver-name {:?} is not a DNS subdomain",
            args.driver_name
        );
    }
    let end = match &args.end {
        Some(text) => parse_time(text)?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs()
            .try_into()
            .context("the clock is past the year 292 billion")?,
    };
    let end_text = jiff::Timestamp::from_second(end)
        .map(|t| t.to_string())
        .with_context(|| format!("--end {end} is out of range"))?;
    let client = Client::new(&args.prometheus, Duration::from_secs(args.timeout))?
        .with_limits(crate::promql::DEFAULT_MAX_BODY_BYTES, args.max_series);
    let catalog = PriceCatalog::builtin()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let span = info_span!("recommend", prometheus = %args.prometheus, window, end);
    let _entered = span.enter();
    let (allocations, owners) =
        runtime.block_on(gather::gather(&client, end as f64, window, idle_for, step))?;
    let report = recommend(
        &allocations,
        &owners,
        &catalog,
        &rules,
        Window {
            end_unix: end as f64,
            end: end_text,
            seconds: window as f64,
        },
        &args.driver_name,
    );
    let text = match args.format {
        Format::Table => render_table(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Openmetrics => render_openmetrics(&report),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Seconds in a Prometheus-style duration: one or more `<n><unit>` with units `s m h d w`
/// (`1h30m`, `7d`); at least 1 s.
pub fn duration_seconds(text: &str) -> anyhow::Result<u64> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    if text.is_empty() || text.len() > 32 {
        bail!("{text:?} is not a duration like 7d, 36h or 90m");
    }
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => bail!("{text:?} is not a duration like 7d, 36h or 90m"),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| anyhow::anyhow!("{text:?} is not a duration like 7d, 36h or 90m"))?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| anyhow::anyhow!("{text:?} is too long"))?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        bail!("{text:?} is not a duration like 7d, 36h or 90m");
    }
    Ok(total)
}

/// Unix seconds from RFC 3339 or a number of seconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let ts: jiff::Timestamp = text
        .parse()
        .with_context(|| format!("--end {text:?} is neither RFC 3339 nor Unix seconds"))?;
    Ok(ts.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse_and_bad_ones_are_refused() {
        assert_eq!(duration_seconds("7d").unwrap(), 604_800);
        assert_eq!(duration_seconds("1h30m").unwrap(), 5_400);
        assert_eq!(duration_seconds("90s").unwrap(), 90);
        for bad in ["", "7", "d", "7x", "0s", "99999999999999999999w"] {
            assert!(duration_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("1800000000").unwrap(), 1_800_000_000);
        assert_eq!(parse_time("2027-01-15T08:00:00Z").unwrap(), 1_800_000_000);
        assert!(parse_time("yesterday").is_err());
        assert!(gather::check_points(604_800, 60, MAX_POINTS).is_ok());
        assert!(gather::check_points(604_800, 1, MAX_POINTS).is_err());
    }
}
