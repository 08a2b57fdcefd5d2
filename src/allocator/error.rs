//! Why the allocator model cannot answer (as opposed to "no device fits", which is an
//! [`Outcome`](super::Outcome), not an error).

/// One error enum for the allocator model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocatorError {
    /// A CEL selector uses something this model does not evaluate. The scheduler would
    /// evaluate it; the model refuses to guess what it would say.
    #[error("selector not understood: {expression:?}: {reason}")]
    SelectorNotUnderstood {
        /// The expression (cut to 200 characters).
        expression: String,
        /// What part is not understood.
        reason: String,
    },
    /// A selector failed at run time on a device (a missing attribute, a type mismatch). The
    /// upstream allocator aborts the whole allocation on the node when this happens.
    #[error("CEL runtime error in {owner} selector {expression:?} on device {device}: {reason}")]
    SelectorRuntime {
        /// `class <name>` or `claim <name>`.
        owner: String,
        /// The expression (cut to 200 characters).
        expression: String,
        /// The device it was evaluated on.
        device: String,
        /// What went wrong.
        reason: String,
    },
    /// A request names a DeviceClass that was not given.
    #[error("claim {claim}, request {request}: device class {class:?} not found")]
    UnknownClass {
        /// Claim name.
        claim: String,
        /// Request or subrequest name.
        request: String,
        /// Class name.
        class: String,
    },
    /// A claim uses a field whose feature gate is off at the chosen feature level; the
    /// upstream allocator refuses such a claim outright.
    #[error("claim {claim}, request {request}: {what}, but the {gate} feature is disabled")]
    FeatureDisabled {
        /// Claim name.
        claim: String,
        /// Request name.
        request: String,
        /// What the request uses.
        what: &'static str,
        /// The feature gate.
        gate: &'static str,
    },
    /// A request asks for `All` devices while one of the node's pools is incomplete or
    /// invalid; upstream refuses rather than give a partial "all".
    #[error("claim {claim}, request {request}: asks for all devices, but pool {pool} is {why}")]
    AllWithBadPool {
        /// Claim name.
        claim: String,
        /// Request name.
        request: String,
        /// Pool name.
        pool: String,
        /// `incomplete` or `invalid: …`.
        why: String,
    },
    /// Input out of bounds or malformed (quantities, counts, names, sizes).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Input the model deliberately does not handle (and says so instead of guessing).
    #[error("not supported by the allocator model: {0}")]
    Unsupported(String),
    /// The search ran past its step budget (a pathological claim); the answer is unknown.
    #[error("search stopped after {steps} steps without an answer")]
    SearchBudget {
        /// Steps taken.
        steps: u64,
    },
}

/// Cuts an expression for an error message.
pub(crate) fn cut(expression: &str) -> String {
    expression.chars().take(200).collect()
}
