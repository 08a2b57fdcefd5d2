//! Logging setup: an EnvFilter and plain or JSON lines on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter expression does not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The expression.
        filter: String,
        /// Parser error.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised: {0}")]
    AlreadySet(String),
}

/// Where kube-client's HTTP layer logs every failed request at ERROR ("failed with error …"),
/// one line per attempt of every retrying watch (37 in 10 s with the API server away). The
/// caller sees the same failure and logs it where it is handled, at WARN with its back-off
/// (`cluster::watch`, `publish::publisher`), so these lines are off unless asked for.
const KUBE_CLIENT_HTTP: &str = "kube_client::client::builder";

/// The filter `level` asks for, plus `KUBE_CLIENT_HTTP=off` unless it names `kube_client`
/// itself (then it gets exactly what it says).
fn filter_directives(level: &str) -> String {
    if level.contains("kube_client") {
        level.to_owned()
    } else if level.trim().is_empty() {
        format!("{KUBE_CLIENT_HTTP}=off")
    } else {
        format!("{level},{KUBE_CLIENT_HTTP}=off")
    }
}

/// Install the global subscriber described by `args`. Plain lines carry ANSI colours only on
/// a terminal (and not with `NO_COLOR` set): a file or `kubectl logs` gets none.
pub fn init(args: &LogArgs) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(filter_directives(&args.log_level)).map_err(|source| {
        TelemetryError::Filter {
            filter: args.log_level.clone(),
            source,
        }
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Plain => builder
            .with_ansi(ansi(std::io::stderr().is_terminal()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    result.map_err(|e| TelemetryError::AlreadySet(e.to_string()))
}

/// Colours for plain lines: a terminal, and no `NO_COLOR` (https://no-color.org).
fn ansi(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_client_http_errors_are_off_unless_named() {
        assert_eq!(
            filter_directives("info"),
            "info,kube_client::client::builder=off"
        );
        assert_eq!(
            filter_directives("kube_client=debug,info"),
            "kube_client=debug,info"
        );
        assert_eq!(filter_directives(""), "kube_client::client::builder=off");
        for level in ["info", "tessera=debug,warn", "kube_client=trace"] {
            EnvFilter::try_new(filter_directives(level)).unwrap();
        }
    }

    #[test]
    fn no_colour_off_a_terminal() {
        assert!(!ansi(false));
    }
}
