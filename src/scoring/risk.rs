//! Interruption risk: a pod's declared tolerance, the work it loses when its node is reclaimed,
//! and the expected cost of that loss per hour (`docs/cost-model.md` §4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Pod annotation declaring how a pod copes with its node being reclaimed:
/// `intolerant`, `checkpointed` or `tolerant`.
pub const INTERRUPTION_ANNOTATION: &str = "tessera.dev/interruption";

/// Longest annotation value copied into an error message.
const MAX_SHOWN_CHARS: usize = 64;

/// Errors of reading a tolerance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToleranceError {
    /// A value that is none of the three tolerances.
    #[error(
        "{INTERRUPTION_ANNOTATION}={value:?} is not a tolerance; expected intolerant, \
         checkpointed or tolerant"
    )]
    Unknown {
        /// The offending value (shortened when long).
        value: String,
    },
}

/// How a pod copes with an interruption of its node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    /// Must not be interrupted: never placed where an interruption is possible (spot nodes).
    Intolerant,
    /// Saves its state periodically; an interruption loses the work since the last checkpoint.
    ///
    /// The default for pods without the annotation: it neither keeps them off spot nodes the
    /// cluster already lets them use, nor pretends an interruption costs them nothing.
    #[default]
    Checkpointed,
    /// Stops cleanly within the interruption notice; loses at most the notice window.
    Tolerant,
}

impl Tolerance {
    /// All tolerances, from least to most tolerant.
    pub const ALL: [Tolerance; 3] = [
        Tolerance::Intolerant,
        Tolerance::Checkpointed,
        Tolerance::Tolerant,
    ];

    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tolerance::Intolerant => "intolerant",
            Tolerance::Checkpointed => "checkpointed",
            Tolerance::Tolerant => "tolerant",
        }
    }

    /// A dense index 0..3, in [`Tolerance::ALL`] order.
    pub fn index(self) -> usize {
        match self {
            Tolerance::Intolerant => 0,
            Tolerance::Checkpointed => 1,
            Tolerance::Tolerant => 2,
        }
    }

    /// The tolerance a pod declares through [`INTERRUPTION_ANNOTATION`]; `None` (no
    /// annotation) gives the default, [`Tolerance::Checkpointed`]. Values are trimmed and
    /// compared ignoring ASCII case.
    pub fn from_annotation(value: Option<&str>) -> Result<Tolerance, ToleranceError> {
        value.map_or(Ok(Tolerance::default()), str::parse)
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tolerance {
    type Err = ToleranceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Tolerance::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ToleranceError::Unknown {
                value: s.chars().take(MAX_SHOWN_CHARS).collect(),
            })
    }
}

/// What an interruption costs each tolerance, in hours of the partition's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossAssumptions {
    /// Hours between a checkpointed pod's checkpoints; on average an interruption lands
    /// mid-interval, so the pod loses half of it.
    pub checkpoint_interval_hours: f64,
    /// Hours a tolerant pod loses: the notice window it spends shutting down.
    pub tolerant_loss_hours: f64,
}

impl LossAssumptions {
    /// Expected hours of work a pod of `tolerance` loses per interruption; `None` for
    /// intolerant pods, which are never placed where they could be interrupted.
    pub fn lost_hours(&self, tolerance: Tolerance) -> Option<f64> {
        match tolerance {
            Tolerance::Intolerant => None,
            Tolerance::Checkpointed => Some(self.checkpoint_interval_hours / 2.0),
            Tolerance::Tolerant => Some(self.tolerant_loss_hours),
        }
    }
}

/// Expected cost of interruptions per hour of running, US dollars: `p_h × C × L` for a
/// partition costing `hourly_cost` $/h on a node interrupted with probability
/// `hourly_probability` per hour, losing `lost_hours` of work each time.
///
/// Each hour the node is interrupted with probability `p_h`, and an interruption throws away
/// `L` hours of paid partition time (`C` $/h) that must be run again.
pub fn expected_interruption_cost(
    hourly_probability: f64,
    hourly_cost: f64,
    lost_hours: f64,
) -> f64 {
    hourly_probability * hourly_cost * lost_hours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_from_their_annotation_values() {
        for t in Tolerance::ALL {
            assert_eq!(t.as_str().parse::<Tolerance>(), Ok(t));
            assert_eq!(Tolerance::from_annotation(Some(t.as_str())), Ok(t));
            assert_eq!(Tolerance::ALL[t.index()], t);
        }
        assert_eq!(" Tolerant ".parse::<Tolerance>(), Ok(Tolerance::Tolerant));
        assert_eq!(
            Tolerance::from_annotation(None),
            Ok(Tolerance::Checkpointed)
        );
    }

    #[test]
    fn unknown_tolerances_are_errors_with_a_short_value() {
        let err = "sometimes".parse::<Tolerance>().unwrap_err();
        assert!(err.to_string().contains("\"sometimes\""), "{err}");
        assert!(
            err.to_string()
                .contains("intolerant, checkpointed or tolerant")
        );
        let long = "x".repeat(10_000);
        let err = Tolerance::from_annotation(Some(&long)).unwrap_err();
        assert!(err.to_string().len() < 250, "{}", err.to_string().len());
    }

    #[test]
    fn lost_hours_follow_the_documented_assumptions() {
        let loss = LossAssumptions {
            checkpoint_interval_hours: 1.0,
            tolerant_loss_hours: 2.0 / 60.0,
        };
        assert_eq!(loss.lost_hours(Tolerance::Intolerant), None);
        assert_eq!(loss.lost_hours(Tolerance::Checkpointed), Some(0.5));
        assert_eq!(loss.lost_hours(Tolerance::Tolerant), Some(2.0 / 60.0));
    }

    #[test]
    fn expected_cost_matches_the_worked_example_in_the_cost_model() {
        // g5.xlarge spot, band >20 %, checkpointed: 4.9526e-4 × 0.4125 × 0.5 ≈ 1.02e-4 $/h.
        let e = expected_interruption_cost(4.9526e-4, 0.4125, 0.5);
        assert!((e - 1.0215e-4).abs() < 1e-7, "{e}");
    }
}
