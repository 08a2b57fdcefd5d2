//! How each watcher is doing: synced or not, when it last delivered an event, whether it is
//! failing and for how long. Pure bookkeeping, fed by the watch loop with the current time.
//!
//! Staleness is measured from the first failure of an unbroken run of failures: until then
//! the watch delivered every change, so the view was current. A quiet but healthy watch is not
//! stale, however long ago its last event was.

use std::time::Duration;

use tokio::time::Instant;

use super::key::truncate;
use super::store::Kind;

/// Longest watch error message kept for `/readyz`.
const MAX_ERROR_LEN: usize = 300;

/// What one watcher has done so far.
#[derive(Debug, Clone)]
pub(crate) struct WatcherState {
    started: Instant,
    synced: bool,
    events: u64,
    errors: u64,
    last_event: Option<Instant>,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

/// A watcher's health, as reported by [`Cache::health`](super::Cache::health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherHealth {
    /// What it watches.
    pub kind: Kind,
    /// Whether its initial list has completed (it stays synced through later relists).
    pub synced: bool,
    /// Events delivered.
    pub events: u64,
    /// Errors seen (each followed by a backed-off retry).
    pub errors: u64,
    /// Time since the last delivered event.
    pub last_event_age: Option<Duration>,
    /// While the watch is failing: how long (changes since then may be missing).
    pub stale_for: Option<Duration>,
    /// The last error, while failing.
    pub last_error: Option<String>,
}

impl WatcherState {
    pub(crate) fn new(started: Instant) -> Self {
        WatcherState {
            started,
            synced: false,
            events: 0,
            errors: 0,
            last_event: None,
            failing_since: None,
            last_error: None,
        }
    }

    /// An event arrived; `initial_list_done` when it ends a (re)list.
    pub(crate) fn event(&mut self, now: Instant, initial_list_done: bool) {
        self.events += 1;
        self.last_event = Some(now);
        self.failing_since = None;
        self.last_error = None;
        self.synced |= initial_list_done;
    }

    /// The watch failed (it retries after a back-off).
    pub(crate) fn error(&mut self, now: Instant, message: &str) {
        self.errors += 1;
        self.failing_since.get_or_insert(now);
        self.last_error = Some(truncate(message, MAX_ERROR_LEN).to_owned());
    }

    /// Whether the last thing the watch reported was an error (no event since).
    pub(crate) fn is_failing(&self) -> bool {
        self.last_error.is_some()
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced
    }

    pub(crate) fn health(&self, kind: Kind, now: Instant) -> WatcherHealth {
        WatcherHealth {
            kind,
            synced: self.synced,
            events: self.events,
            errors: self.errors,
            last_event_age: self.last_event.map(|t| now.saturating_duration_since(t)),
            stale_for: self.failing_since.map(|t| now.saturating_duration_since(t)),
            last_error: self.last_error.clone(),
        }
    }

    /// The readiness detail: what a person reading `/readyz` needs to know.
    pub(crate) fn describe(&self, now: Instant) -> String {
        let secs = |d: Duration| d.as_secs();
        let failing = match (&self.failing_since, &self.last_error) {
            (Some(since), Some(error)) => Some(format!(
                "watch failing for {}s ({} errors so far): {error}",
                secs(now.saturating_duration_since(*since)),
                self.errors
            )),
            _ => None,
        };
        match (self.synced, failing) {
            (false, None) => format!(
                "initial list in progress ({} objects, started {}s ago)",
                self.events,
                secs(now.saturating_duration_since(self.started))
            ),
            (false, Some(failing)) => format!("initial list not done: {failing}"),
            (true, None) => match self.last_event {
                Some(t) => format!(
                    "synced, watching ({} events, last {}s ago)",
                    self.events,
                    secs(now.saturating_duration_since(t))
                ),
                None => "synced, watching".to_owned(),
            },
            (true, Some(failing)) => {
                format!("synced, serving cached data that may be stale: {failing}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn listing_then_synced_then_quiet_is_never_stale() {
        let t0 = Instant::now();
        let mut w = WatcherState::new(t0);
        assert!(
            w.describe(at(t0, 2))
                .starts_with("initial list in progress (0 objects, started 2s ago)")
        );
        w.event(at(t0, 3), false);
        w.event(at(t0, 4), true);
        assert!(w.is_synced());
        let h = w.health(Kind::Node, at(t0, 600));
        assert_eq!(h.last_event_age, Some(Duration::from_secs(596)));
        assert_eq!(h.stale_for, None);
        assert_eq!(
            w.describe(at(t0, 600)),
            "synced, watching (2 events, last 596s ago)"
        );
    }

    #[test]
    fn failures_after_sync_report_staleness_from_the_first_failure() {
        let t0 = Instant::now();
        let mut w = WatcherState::new(t0);
        w.event(at(t0, 1), true);
        w.error(at(t0, 10), "connection refused");
        w.error(at(t0, 20), "connection refused again");
        let h = w.health(Kind::Pod, at(t0, 40));
        assert!(h.synced);
        assert_eq!(h.stale_for, Some(Duration::from_secs(30)));
        assert_eq!(h.errors, 2);
        let text = w.describe(at(t0, 40));
        assert!(
            text.starts_with("synced, serving cached data that may be stale"),
            "{text}"
        );
        assert!(
            text.contains("failing for 30s (2 errors so far): connection refused again"),
            "{text}"
        );
        // The relist after recovery clears the failure.
        w.event(at(t0, 41), false);
        assert_eq!(w.health(Kind::Pod, at(t0, 42)).stale_for, None);
        assert!(w.describe(at(t0, 42)).starts_with("synced, watching"));
    }

    #[test]
    fn failing_before_the_first_sync_is_not_ready_and_says_why() {
        let t0 = Instant::now();
        let mut w = WatcherState::new(t0);
        w.error(at(t0, 5), &"forbidden: ".repeat(100));
        assert!(!w.is_synced());
        let text = w.describe(at(t0, 7));
        assert!(text.starts_with(
            "initial list not done: watch failing for 2s (1 errors so far): forbidden"
        ));
        assert!(text.len() < MAX_ERROR_LEN + 100, "{}", text.len());
    }
}
