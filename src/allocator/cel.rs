//! The CEL subset that device selectors in tessera's DeviceClasses, its examples and common
//! user claims use, compiled once and evaluated per device.
//!
//! Understood: `device.driver`, `device.allowMultipleAllocations`,
//! `device.attributes['<domain>'].<id>` (or `['<id>']`), `device.capacity['<domain>'].<id>`,
//! literals (int, string, bool, lists), `quantity('…')`, `semver('…')`, `==`, `!=`, `<`, `<=`,
//! `>`, `>=` (ints, strings), `&&`, `||`, `!`, `in` (lists; map keys), parentheses, and the
//! methods `compareTo`, `isGreaterThan`, `isLessThan` (quantities, versions),
//! `contains`, `startsWith`, `endsWith` (strings). Anything else is
//! [`SelectorNotUnderstood`](super::AllocatorError::SelectorNotUnderstood) at compile time:
//! the model never guesses what the scheduler's CEL would say.
//!
//! Semantics follow the upstream environment (`staging/src/k8s.io/dynamic-resource-allocation/cel/compile.go`,
//! kubernetes-1.36.0): an unknown domain is an empty map, an unknown attribute or capacity
//! inside it is a runtime error ("no such key"); `&&` and `||` absorb errors the way CEL does
//! (`false && error` is `false`, `true || error` is `true`); a runtime error aborts the
//! allocation on the node (`selectorsMatch` returns it).

mod eval;
mod parse;

pub use eval::DeviceView;

use super::error::{AllocatorError, cut};

/// A compiled selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    expression: String,
    root: parse::Expr,
}

impl Selector {
    /// Compiles `expression`, or says which part is not understood.
    pub fn compile(expression: &str) -> Result<Selector, AllocatorError> {
        let root =
            parse::parse(expression).map_err(|reason| AllocatorError::SelectorNotUnderstood {
                expression: cut(expression),
                reason,
            })?;
        Ok(Selector {
            expression: expression.to_owned(),
            root,
        })
    }

    /// The source text.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Whether `device` matches: `Ok(bool)`, or the runtime error's text.
    pub fn matches(&self, device: &DeviceView<'_>) -> Result<bool, String> {
        match eval::eval(&self.root, device) {
            eval::Value::Bool(b) => Ok(b),
            eval::Value::Error(e) => Err(e),
            other => Err(format!("selector gave {}, not a bool", other.type_name())),
        }
    }
}

#[cfg(test)]
mod tests;
