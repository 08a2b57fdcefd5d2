//! Evaluation of a parsed selector against one device.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::parse::{CmpOp, Expr, Method, Version};
use crate::allocator::input::{AttributeValue, Capacity};
use crate::allocator::quantity::Quantity;

/// What a selector sees of a device (`cel.Device` upstream).
#[derive(Debug, Clone, Copy)]
pub struct DeviceView<'a> {
    /// The driver.
    pub driver: &'a str,
    /// Fully qualified attribute name → value.
    pub attributes: &'a BTreeMap<String, AttributeValue>,
    /// Fully qualified capacity name → capacity.
    pub capacity: &'a BTreeMap<String, Capacity>,
    /// `allowMultipleAllocations`.
    pub allow_multiple_allocations: bool,
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    Quantity(Quantity),
    Version(Version),
    List(Vec<Value>),
    /// A domain map (only for `in`).
    Domain {
        capacity: bool,
        domain: String,
    },
    /// A CEL runtime error.
    Error(String),
}

impl Value {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::Quantity(_) => "quantity",
            Value::Version(_) => "semver",
            Value::List(_) => "list",
            Value::Domain { .. } => "map",
            Value::Error(_) => "error",
        }
    }
}

fn no_overload(op: &str, a: &Value, b: &Value) -> Value {
    Value::Error(format!(
        "no such overload: {} {op} {}",
        a.type_name(),
        b.type_name()
    ))
}

/// Looks up `domain`/`id` in a map keyed by names as published: fully qualified, or bare
/// for the driver's own domain (`parseQualifiedName` upstream gives bare names the driver's
/// domain).
fn lookup<'m, V>(
    map: &'m BTreeMap<String, V>,
    driver: &str,
    domain: &str,
    id: &str,
) -> Option<&'m V> {
    if let Some(v) = map.get(&format!("{domain}/{id}")) {
        return Some(v);
    }
    if domain == driver {
        return map.get(id);
    }
    None
}

/// Evaluates `expr` on `device`.
pub(super) fn eval(expr: &Expr, device: &DeviceView<'_>) -> Value {
    match expr {
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Int(i) => Value::Int(*i),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Quantity(q) => Value::Quantity(*q),
        Expr::Version(v) => Value::Version(v.clone()),
        Expr::List(items) => Value::List(items.iter().map(|e| eval(e, device)).collect()),
        Expr::Root(_) => Value::Error("partial path used as a value".into()),
        Expr::Driver => Value::Str(device.driver.to_owned()),
        Expr::MultiAlloc => Value::Bool(device.allow_multiple_allocations),
        Expr::Domain { capacity, domain } => Value::Domain {
            capacity: *capacity,
            domain: domain.clone(),
        },
        Expr::Lookup { map, key: id } => match map.as_ref() {
            Expr::Domain {
                capacity: false,
                domain,
            } => match lookup(device.attributes, device.driver, domain, id) {
                Some(AttributeValue::Int(i)) => Value::Int(*i),
                Some(AttributeValue::Bool(b)) => Value::Bool(*b),
                Some(AttributeValue::String(s)) => Value::Str(s.clone()),
                Some(AttributeValue::Version(v)) => match Version::parse(v) {
                    Some(v) => Value::Version(v),
                    None => Value::Error(format!("attribute {domain}/{id}: bad version {v:?}")),
                },
                None => Value::Error(format!("no such key: {id}")),
            },
            Expr::Domain {
                capacity: true,
                domain,
            } => match lookup(device.capacity, device.driver, domain, id) {
                Some(c) => Value::Quantity(c.value),
                None => Value::Error(format!("no such key: {id}")),
            },
            _ => Value::Error("lookup on a non-map".into()),
        },
        Expr::Not(inner) => match eval(inner, device) {
            Value::Bool(b) => Value::Bool(!b),
            Value::Error(e) => Value::Error(e),
            other => Value::Error(format!("no such overload: !{}", other.type_name())),
        },
        // CEL's commutative logic: a definite false (resp. true) on either side wins over an
        // error on the other.
        Expr::And(a, b) => match (eval(a, device), eval(b, device)) {
            (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
            (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
            (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
            (x, y) => no_overload("&&", &x, &y),
        },
        Expr::Or(a, b) => match (eval(a, device), eval(b, device)) {
            (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
            (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
            (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
            (x, y) => no_overload("||", &x, &y),
        },
        Expr::Cmp(op, a, b) => compare(*op, eval(a, device), eval(b, device)),
        Expr::In(a, b) => {
            let needle = eval(a, device);
            if let Value::Error(e) = needle {
                return Value::Error(e);
            }
            match eval(b, device) {
                Value::List(items) => {
                    for item in &items {
                        if let Value::Error(e) = item {
                            return Value::Error(e.clone());
                        }
                    }
                    Value::Bool(items.iter().any(|item| equal(&needle, item) == Some(true)))
                }
                Value::Domain { capacity, domain } => match needle {
                    Value::Str(id) => Value::Bool(if capacity {
                        lookup(device.capacity, device.driver, &domain, &id).is_some()
                    } else {
                        lookup(device.attributes, device.driver, &domain, &id).is_some()
                    }),
                    other => {
                        Value::Error(format!("no such overload: {} in map", other.type_name()))
                    }
                },
                Value::Error(e) => Value::Error(e),
                other => no_overload("in", &needle, &other),
            }
        }
        Expr::Method {
            target,
            method,
            arg,
        } => call(*method, eval(target, device), eval(arg, device)),
    }
}

/// `Some(equal)` for comparable values, `None` for a type mismatch.
fn equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::Int(x), Value::Int(y)) => Some(x == y),
        (Value::Str(x), Value::Str(y)) => Some(x == y),
        (Value::Quantity(x), Value::Quantity(y)) => Some(x == y),
        (Value::Version(x), Value::Version(y)) => Some(x == y),
        _ => None,
    }
}

fn compare(op: CmpOp, a: Value, b: Value) -> Value {
    if let Value::Error(e) = a {
        return Value::Error(e);
    }
    if let Value::Error(e) = b {
        return Value::Error(e);
    }
    let name = match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    };
    if matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return match equal(&a, &b) {
            Some(eq) => Value::Bool(eq == (op == CmpOp::Eq)),
            None => no_overload(name, &a, &b),
        };
    }
    // CEL orders ints, strings and bools; quantities and versions only through methods.
    let ordering = match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => return no_overload(name, &a, &b),
    };
    Value::Bool(match op {
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}

fn call(method: Method, target: Value, arg: Value) -> Value {
    if let Value::Error(e) = target {
        return Value::Error(e);
    }
    if let Value::Error(e) = arg {
        return Value::Error(e);
    }
    let ordering = match (&target, &arg) {
        (Value::Quantity(x), Value::Quantity(y)) => Some(x.cmp(y)),
        (Value::Version(x), Value::Version(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match (method, ordering) {
        (Method::CompareTo, Some(o)) => Value::Int(match o {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }),
        (Method::IsGreaterThan, Some(o)) => Value::Bool(o == Ordering::Greater),
        (Method::IsLessThan, Some(o)) => Value::Bool(o == Ordering::Less),
        (Method::Contains | Method::StartsWith | Method::EndsWith, _) => match (&target, &arg) {
            (Value::Str(s), Value::Str(p)) => Value::Bool(match method {
                Method::Contains => s.contains(p.as_str()),
                Method::StartsWith => s.starts_with(p.as_str()),
                _ => s.ends_with(p.as_str()),
            }),
            _ => no_overload("string method", &target, &arg),
        },
        _ => no_overload("comparison method", &target, &arg),
    }
}
