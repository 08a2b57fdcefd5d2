//! SIGTERM / SIGINT → a cancellation token every task watches; a second signal exits at once.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Exit code when a second signal cuts the graceful drain short (128 + SIGTERM).
const EXIT_FORCED: i32 = 143;

/// A token cancelled on the first SIGTERM or SIGINT. A second signal exits the process
/// immediately, for an operator who does not want to wait for the drain.
///
/// Must be called inside a tokio runtime.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!(signal = "SIGTERM", "shutting down"),
            _ = int.recv() => info!(signal = "SIGINT", "shutting down"),
        }
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        warn!("second signal: exiting without finishing the drain");
        std::process::exit(EXIT_FORCED);
    });
    Ok(token)
}

/// Wait for `drain` but no longer than `grace`; says in the log when the grace ran out.
pub async fn drain_within<F: std::future::Future>(grace: Duration, drain: F) -> Option<F::Output> {
    match tokio::time::timeout(grace, drain).await {
        Ok(out) => Some(out),
        Err(_) => {
            warn!(
                grace_secs = grace.as_secs_f64(),
                "grace period ran out before the drain finished"
            );
            None
        }
    }
}
