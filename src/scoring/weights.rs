//! The weights of the blended score, read from a YAML file with defaults for every key
//! (`docs/cost-model.md` §5).
//!
//! ```yaml
//! cost: 1.0                        # × the partition's price, $/h
//! risk: 1.0                        # × the expected interruption cost, $/h
//! frag: 20.0                       # $ per GPU of fragmentation the placement adds
//! pack: 0.5                        # × the price of an idle node the pod would start, $/h
//! checkpoint_interval_minutes: 60  # checkpointed pods lose half of this per interruption
//! tolerant_loss_minutes: 2         # tolerant pods lose this per interruption
//! fragmentation:                   # tessera's fragmentation term
//!   frag: 1.0
//!   quantum: 60
//!   strand: 2.0
//!   cpu_per_gpu: 11000
//!   pack: 0.0
//!   share_loss: 10.0
//!   pressure: 1.0
//! ```

use serde::{Deserialize, Serialize};

use super::policy::TesseraWeights;
use super::risk::LossAssumptions;

/// Largest weights file read; the file has a dozen keys, anything bigger is a mistake.
pub const MAX_WEIGHTS_FILE_BYTES: usize = 64 * 1024;
/// Largest value any weight may take. Bounding weights keeps every blended score finite.
pub const MAX_WEIGHT: f64 = 1e6;
/// Longest checkpoint interval accepted: one week.
const MAX_CHECKPOINT_MINUTES: f64 = 7.0 * 24.0 * 60.0;
/// Longest tolerant-pod loss accepted: one day.
const MAX_TOLERANT_LOSS_MINUTES: f64 = 24.0 * 60.0;
/// Largest fragmentation bucket: a whole GPU.
const MAX_QUANTUM_MILLI: f64 = 1000.0;
/// Largest CPU per GPU: 10,000 cores.
const MAX_CPU_PER_GPU_MILLI: f64 = 1e7;

/// Errors of reading or checking weights.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// The file is larger than [`MAX_WEIGHTS_FILE_BYTES`].
    #[error(
        "{file}: {bytes} bytes is more than the {MAX_WEIGHTS_FILE_BYTES} a weights file may have"
    )]
    TooLarge {
        /// Name of the file.
        file: String,
        /// Its size.
        bytes: usize,
    },
    /// Not YAML, an unknown key, or a value of the wrong type; the message carries the
    /// parser's line and column.
    #[error("{at}: {message}")]
    Yaml {
        /// `file:line:column`, or just the file's name when the parser gives no position.
        at: String,
        /// The parser's message.
        message: String,
    },
    /// A value outside its range.
    #[error("{file}: `{key}` = {value} {problem}")]
    OutOfRange {
        /// Name of the file (or `defaults`).
        file: String,
        /// Dotted key.
        key: &'static str,
        /// The value given.
        value: f64,
        /// What is wrong with it.
        problem: String,
    },
}

/// Weights of the blended node score. Every term is in US dollars per hour, so a weight of 1
/// counts a term at face value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Weight of the partition's hourly price.
    pub cost: f64,
    /// Weight of the expected interruption cost.
    pub risk: f64,
    /// Dollars per hour charged per GPU of fragmentation the placement adds (the
    /// fragmentation policy's term, in GPUs).
    pub frag: f64,
    /// Weight of the hourly price of an idle node the pod would start: the node can no longer
    /// be scaled away.
    pub pack: f64,
    /// Minutes between a checkpointed pod's checkpoints.
    pub checkpoint_interval_minutes: f64,
    /// Minutes of work a tolerant pod loses per interruption (the notice window).
    pub tolerant_loss_minutes: f64,
    /// tessera's fragmentation term.
    pub fragmentation: TesseraWeights,
}

impl Default for Weights {
    /// The defaults measured in `docs/simulation.md` ("Cost-aware placement").
    fn default() -> Self {
        Weights {
            cost: 1.0,
            risk: 1.0,
            frag: 20.0,
            pack: 0.5,
            checkpoint_interval_minutes: 60.0,
            tolerant_loss_minutes: 2.0,
            fragmentation: TesseraWeights::default(),
        }
    }
}

impl Weights {
    /// Reads weights from YAML text; `file` names the source in errors. Keys left out keep
    /// their defaults; unknown keys, wrong types, negative, non-finite and out-of-range values
    /// are errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Weights, WeightsError> {
        if text.len() > MAX_WEIGHTS_FILE_BYTES {
            return Err(WeightsError::TooLarge {
                file: file.to_owned(),
                bytes: text.len(),
            });
        }
        // An empty document (or one holding only comments) means "all defaults".
        let weights = if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            Weights::default()
        } else {
            serde_saphyr::from_str::<Weights>(text).map_err(|e| yaml_error(file, &e))?
        };
        weights.validate(file)?;
        Ok(weights)
    }

    /// Checks every value is finite, non-negative and within its bound; `file` names the
    /// source in errors.
    pub fn validate(&self, file: &str) -> Result<(), WeightsError> {
        let f = &self.fragmentation;
        let checks: [(&'static str, f64, f64, bool); 13] = [
            ("cost", self.cost, MAX_WEIGHT, false),
            ("risk", self.risk, MAX_WEIGHT, false),
            ("frag", self.frag, MAX_WEIGHT, false),
            ("pack", self.pack, MAX_WEIGHT, false),
            (
                "checkpoint_interval_minutes",
                self.checkpoint_interval_minutes,
                MAX_CHECKPOINT_MINUTES,
                true,
            ),
            (
                "tolerant_loss_minutes",
                self.tolerant_loss_minutes,
                MAX_TOLERANT_LOSS_MINUTES,
                false,
            ),
            ("fragmentation.frag", f.frag, MAX_WEIGHT, false),
            ("fragmentation.pack", f.pack, MAX_WEIGHT, false),
            ("fragmentation.quantum", f.quantum, MAX_QUANTUM_MILLI, false),
            ("fragmentation.strand", f.strand, MAX_WEIGHT, false),
            (
                "fragmentation.cpu_per_gpu",
                f.cpu_per_gpu,
                MAX_CPU_PER_GPU_MILLI,
                false,
            ),
            ("fragmentation.share_loss", f.share_loss, MAX_WEIGHT, false),
            ("fragmentation.pressure", f.pressure, MAX_WEIGHT, false),
        ];
        for (key, value, max, positive) in checks {
            let problem = if !value.is_finite() {
                Some("is not a finite number".to_owned())
            } else if value < 0.0 {
                Some("is negative".to_owned())
            } else if positive && value == 0.0 {
                Some("must be greater than 0".to_owned())
            } else if value > max {
                Some(format!("is above the largest accepted value, {max}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(WeightsError::OutOfRange {
                    file: file.to_owned(),
                    key,
                    value,
                    problem,
                });
            }
        }
        Ok(())
    }

    /// These weights with the money terms (cost, risk, pack) off: tessera's fragmentation
    /// policy alone, scaled by `frag`.
    pub fn without_cost(self) -> Weights {
        Weights {
            cost: 0.0,
            risk: 0.0,
            pack: 0.0,
            ..self
        }
    }

    /// The lost-work assumptions in hours.
    pub fn loss(&self) -> LossAssumptions {
        LossAssumptions {
            checkpoint_interval_hours: self.checkpoint_interval_minutes / 60.0,
            tolerant_loss_hours: self.tolerant_loss_minutes / 60.0,
        }
    }
}

/// The parser's error as one `file:line:column: message` line, without its source snippet.
fn yaml_error(file: &str, error: &serde_saphyr::Error) -> WeightsError {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let (at, message) = match error.location() {
        Some(at) => {
            let prefix = format!("line {} column {}: ", at.line(), at.column());
            let suffix = format!(" at line {}, column {}", at.line(), at.column());
            let message = first.strip_prefix(prefix.as_str()).unwrap_or(first);
            let message = message.strip_suffix(suffix.as_str()).unwrap_or(message);
            (format!("{file}:{}:{}", at.line(), at.column()), message)
        }
        None => (file.to_owned(), first),
    };
    WeightsError::Yaml {
        at,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_an_empty_file_gives_them() {
        Weights::default().validate("defaults").unwrap();
        assert_eq!(Weights::from_yaml("", "w.yaml"), Ok(Weights::default()));
        assert_eq!(
            Weights::from_yaml("# nothing\n---\n", "w.yaml"),
            Ok(Weights::default())
        );
    }

    #[test]
    fn the_weights_file_in_the_cost_model_doc_is_the_defaults() {
        let doc = include_str!("../../docs/cost-model.md");
        let start = doc.find("```yaml\ncost:").unwrap() + "```yaml\n".len();
        let len = doc[start..].find("```").unwrap();
        let parsed = Weights::from_yaml(&doc[start..start + len], "cost-model.md").unwrap();
        assert_eq!(parsed, Weights::default());
        // The module's own example too.
        let module = include_str!("weights.rs");
        let example: String = module
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| {
                l.trim_start_matches("//!")
                    .strip_prefix(' ')
                    .unwrap_or("")
                    .to_owned()
                    + "\n"
            })
            .collect();
        assert_eq!(
            Weights::from_yaml(&example, "weights.rs"),
            Ok(Weights::default())
        );
    }

    #[test]
    fn keys_left_out_keep_their_defaults() {
        let w = Weights::from_yaml("cost: 2\nfragmentation:\n  strand: 0.5\n", "w.yaml").unwrap();
        assert_eq!(w.cost, 2.0);
        assert_eq!(w.risk, Weights::default().risk);
        assert_eq!(w.fragmentation.strand, 0.5);
        assert_eq!(
            w.fragmentation.quantum,
            TesseraWeights::default().quantum,
            "nested defaults too"
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_file_and_key() {
        for (text, location, key) in [
            ("cots: 1\n", "w.yaml:1:1: ", "unknown field `cots`"),
            (
                "cost: 1\nfragmentation:\n  qantum: 10\n",
                "w.yaml:3:3: ",
                "unknown field `qantum`",
            ),
        ] {
            let err = Weights::from_yaml(text, "w.yaml").unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with(location), "{message}");
            assert!(message.contains(key), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn bad_values_are_errors_that_say_which_key_and_why() {
        for (text, key, problem) in [
            ("cost: -1\n", "`cost`", "is negative"),
            ("risk: .nan\n", "`risk`", "is not a finite number"),
            ("frag: .inf\n", "`frag`", "is not a finite number"),
            ("pack: 1e7\n", "`pack`", "largest accepted"),
            (
                "checkpoint_interval_minutes: 0\n",
                "`checkpoint_interval_minutes`",
                "greater than 0",
            ),
            (
                "fragmentation:\n  strand: -0.5\n",
                "`fragmentation.strand`",
                "is negative",
            ),
        ] {
            let message = Weights::from_yaml(text, "w.yaml").unwrap_err().to_string();
            assert!(message.starts_with("w.yaml: "), "{message}");
            assert!(message.contains(key), "{text}: {message}");
            assert!(message.contains(problem), "{text}: {message}");
        }
    }

    #[test]
    fn wrong_types_and_broken_yaml_are_errors() {
        for text in [
            "cost: cheap\n",
            "cost: [1, 2]\n",
            "cost: 1\n  risk: 2\n",
            "- 1\n",
        ] {
            let err = Weights::from_yaml(text, "w.yaml").unwrap_err();
            assert!(matches!(err, WeightsError::Yaml { .. }), "{text}: {err}");
        }
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let text = "#".repeat(MAX_WEIGHTS_FILE_BYTES + 1);
        assert!(matches!(
            Weights::from_yaml(&text, "w.yaml"),
            Err(WeightsError::TooLarge { .. })
        ));
    }

    #[test]
    fn without_cost_keeps_only_fragmentation() {
        let w = Weights::default().without_cost();
        assert_eq!((w.cost, w.risk, w.pack), (0.0, 0.0, 0.0));
        assert_eq!(w.frag, Weights::default().frag);
        let loss = Weights::default().loss();
        assert_eq!(loss.checkpoint_interval_hours, 1.0);
        assert!((loss.tolerant_loss_hours - 2.0 / 60.0).abs() < 1e-15);
    }
}
