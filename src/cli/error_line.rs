//! One line for a failed command: the error and its causes, each said once.
//!
//! Many error types of this crate and its dependencies put their cause into their own message
//! (`"cannot read kubeconfig {path}: {source}"`) *and* return it from `source()`, so printing
//! the chain (`{:#}` of anyhow) repeats every cause once per level: a kubeconfig failure came
//! out as 630 characters with the file's YAML shown twice. Here a cause whose text the line
//! already holds is skipped.

use std::error::Error;

/// `error`, then each cause not already part of the message so far, joined by `": "`.
pub fn error_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("low level: disk on fire")]
    struct Low;

    /// Repeats its source in its message, as `#[error("…: {0}")]` with `#[from]` does.
    #[derive(Debug, thiserror::Error)]
    #[error("failed to infer config: {0}")]
    struct Mid(#[from] Low);

    /// Says only its own part.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot start the extender")]
    struct Top(#[source] Mid);

    #[test]
    fn each_cause_appears_once() {
        let e = Top(Mid(Low));
        let line = error_line(&e);
        assert_eq!(
            line,
            "cannot start the extender: failed to infer config: low level: disk on fire"
        );
        // What anyhow's alternate form printed before: the cause twice.
        let chained = format!("{:#}", anyhow::Error::new(Top(Mid(Low))));
        assert_eq!(chained.matches("disk on fire").count(), 2, "{chained}");
        assert_eq!(line.matches("disk on fire").count(), 1);
    }

    #[test]
    fn a_cause_that_adds_something_is_kept() {
        let e = anyhow::Error::new(Low).context("reading /etc/x");
        assert_eq!(
            error_line(e.as_ref()),
            "reading /etc/x: low level: disk on fire"
        );
    }
}
