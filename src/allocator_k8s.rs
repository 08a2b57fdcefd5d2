//! Pure translator from `resource.k8s.io/v1` objects (k8s-openapi plain data) to the
//! allocator model's input ([`crate::allocator::input`]).
//!
//! Reads only what the upstream allocator reads. A field whose feature gate is off at the
//! modelled feature level is dropped, as the API server drops disabled fields
//! (`pkg/registry/resource/*/strategy.go`, `dropDisabledFields`), and each drop is reported
//! as a note so the output can say why a device or request changed. Shapes the model does not
//! handle (per-device node selection, node selectors on slices, claim constraints, admin
//! access) are errors, never silently ignored.

mod claim;
mod slice;

pub use claim::{allocated_devices, claim_from_spec, class};
pub use slice::{SliceTarget, slice};

/// What a translation dropped or changed, in words, for the output. One entry per object
/// affected; callers count repeats ([`summarize`]).
pub type Notes = Vec<String>;

/// `notes` with repeats counted: `128 × device consumesCounters dropped (…)`.
pub fn summarize(notes: &[String]) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for note in notes {
        *counts.entry(note.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(note, n)| {
            if n == 1 {
                note.to_owned()
            } else {
                format!("{n} × {note}")
            }
        })
        .collect()
}

/// Why an object cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {problem}")]
pub struct TranslateError {
    /// `ResourceSlice x`, `ResourceClaim ns/name` …
    pub object: String,
    /// What is wrong.
    pub problem: String,
}
