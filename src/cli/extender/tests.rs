use std::io::Write;

use clap::Parser;

use super::*;

/// The flags alone, parsed the way `tessera extender` parses them.
#[derive(Debug, Parser)]
struct Flags {
    #[command(flatten)]
    args: ExtenderArgs,
}

fn parse(flags: &[&str]) -> Result<ExtenderArgs, clap::Error> {
    Flags::try_parse_from(std::iter::once("extender").chain(flags.iter().copied())).map(|f| f.args)
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_are_usable_as_they_are() {
    let config = ExtenderConfig::from_args(&parse(&[]).unwrap()).unwrap();
    assert_eq!(config.listen, "0.0.0.0:8888".parse().unwrap());
    assert_eq!(config.url_prefix, "/");
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(config.weights, Weights::default());
    assert_eq!(config.driver_name, "gpu.tessera.dev");
    assert_eq!(config.stale_after, Duration::from_secs(120));
    assert!(config.tls.is_none());
    assert!(!config.catalog.is_empty());
    assert_eq!(
        config.limits.decode_budget_bytes,
        2 * DEFAULT_MAX_BODY_BYTES
    );
    assert_eq!(config.limits.body_read_timeout, Duration::from_secs(10));
    assert_eq!(config.timeouts.header_read, Duration::from_secs(10));
    assert_eq!(config.access_review_ttl, Some(Duration::from_secs(30)));
}

#[test]
fn hardening_flags_are_read_and_checked() {
    let args = parse(&[
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--tls-client-ca",
        "ca.pem",
        "--max-body-bytes",
        "1048576",
        "--body-read-timeout",
        "3",
        "--header-read-timeout",
        "4",
        "--access-review=false",
        "--admin-tls=true",
    ])
    .unwrap();
    let config = ExtenderConfig::from_args(&args).unwrap();
    assert_eq!(config.tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
    assert_eq!(config.limits.decode_budget_bytes, 2 * 1024 * 1024);
    assert_eq!(config.limits.body_read_timeout, Duration::from_secs(3));
    assert_eq!(config.timeouts.header_read, Duration::from_secs(4));
    assert_eq!(config.access_review_ttl, None);
    assert!(config.admin_tls);
    // HTTPS on the admin port needs the certificate.
    assert!(parse(&["--admin-tls=true"]).is_err());
    // A client CA without a server certificate cannot work: refused by clap.
    assert!(parse(&["--tls-client-ca", "ca.pem"]).is_err());
    for (flags, want) in [
        (
            vec!["--decode-budget-bytes", "1000"],
            "--decode-budget-bytes",
        ),
        (vec!["--body-read-timeout", "0"], "--body-read-timeout"),
        (
            vec!["--header-read-timeout", "301"],
            "--header-read-timeout",
        ),
        (vec!["--access-review-ttl", "0"], "--access-review-ttl"),
        (vec!["--tls-reload-interval", "0"], "--tls-reload-interval"),
    ] {
        let err = ExtenderConfig::from_args(&parse(&flags).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{flags:?}: {err:#}");
    }
}

#[test]
fn tls_needs_both_files() {
    assert!(parse(&["--tls-cert", "c.pem"]).is_err());
    assert!(parse(&["--tls-key", "k.pem"]).is_err());
    let args = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
    let config = ExtenderConfig::from_args(&args).unwrap();
    assert_eq!(config.tls.unwrap().key, PathBuf::from("k.pem"));
}

#[test]
fn bad_values_name_their_flag() {
    for (flags, want) in [
        (vec!["--url-prefix", "scheduler"], "--url-prefix"),
        (vec!["--url-prefix", "/a?b"], "--url-prefix"),
        (vec!["--max-body-bytes", "10"], "--max-body-bytes"),
        (vec!["--stale-after", "0"], "--stale-after"),
        (vec!["--driver-name", "GPU_Driver"], "--driver-name"),
        (vec!["--weights", "/nonexistent/weights.yaml"], "--weights"),
        (vec!["--prices", "/nonexistent/prices.csv"], "--prices"),
    ] {
        let err = ExtenderConfig::from_args(&parse(&flags).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{flags:?}: {err:#}");
    }
}

#[test]
fn weights_and_prices_files_are_read_and_checked() {
    let weights = file("cost: 2.0\nfrag: 5\n");
    let prices = file(
        "cloud,region,instance_type,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,od_usd_per_gpu_hr,spot_usd_hr_est,spot_usd_per_gpu_hr_est,spot_interruption_band,spot_savings_pct,price_source,spot_source\n\
         onprem,dc1,dgx-test,h100,8,81920,,1.50,,,,,amortised,\n",
    );
    let args = parse(&[
        "--weights",
        weights.path().to_str().unwrap(),
        "--prices",
        prices.path().to_str().unwrap(),
    ])
    .unwrap();
    let config = ExtenderConfig::from_args(&args).unwrap();
    assert_eq!(config.weights.cost, 2.0);
    assert_eq!(config.weights.frag, 5.0);
    let row = config.catalog.lookup("dgx-test", Some("dc1")).unwrap();
    assert_eq!(row.od_usd_hr, 12.0);

    let bad = file("cost: -1\n");
    let err =
        ExtenderConfig::from_args(&parse(&["--weights", bad.path().to_str().unwrap()]).unwrap())
            .unwrap_err();
    assert!(format!("{err:#}").contains("is negative"), "{err:#}");
}

#[test]
fn typical_flags_default_to_online_learning_and_are_bounded() {
    let config = ExtenderConfig::from_args(&parse(&[]).unwrap()).unwrap();
    assert_eq!(config.typical.kind, TypicalKind::Online);
    assert_eq!(config.typical.window, OnlineWindow::default());
    assert_eq!(config.typical.refresh, Refresh::default());

    let args = parse(&[
        "--typical",
        "bundled",
        "--typical-half-life",
        "200",
        "--typical-max-shapes",
        "64",
        "--typical-refresh-pods",
        "32",
        "--typical-refresh-seconds",
        "5",
    ])
    .unwrap();
    let typical = ExtenderConfig::from_args(&args).unwrap().typical;
    assert_eq!(typical.kind, TypicalKind::Bundled);
    assert_eq!(
        (typical.window.half_life_pods, typical.window.prior_pods),
        (200.0, 200.0)
    );
    assert_eq!(typical.window.max_shapes, 64);
    assert_eq!(
        typical.refresh,
        Refresh {
            pods: 32,
            interval: Duration::from_secs(5)
        }
    );

    assert!(parse(&["--typical", "known"]).is_err());
    for (flag, value) in [
        ("--typical-half-life", "0.5"),
        ("--typical-half-life", "1e9"),
        ("--typical-max-shapes", "0"),
        ("--typical-max-shapes", "70000"),
        ("--typical-refresh-pods", "0"),
        ("--typical-refresh-pods", "100000"),
        ("--typical-refresh-seconds", "0"),
        ("--typical-refresh-seconds", "3601"),
    ] {
        let err = ExtenderConfig::from_args(&parse(&[flag, value]).unwrap()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with(flag), "{flag} {value}: {text}");
    }
}
