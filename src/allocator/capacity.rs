//! Consumable capacity: what one allocation of a device consumes and whether it still fits.
//!
//! Follows `staging/src/k8s.io/dynamic-resource-allocation/structured/internal/incubating/consumable_capacity.go`
//! (kubernetes-1.36.0): `calculateConsumedCapacity` (a capacity the request does not name
//! consumes the policy's `default`, or the whole value without one; a named amount is raised
//! to `validRange.min` and then up to `min + k·step`, or to the next `validValues` entry),
//! `violatesPolicy` (above `max`, off the step grid, or not a valid value — unless it is the
//! default) and `CmpRequestOverCapacity` (already consumed + this + what the same pod is
//! allocating must stay within `value`, for every capacity of the device).

use std::collections::BTreeMap;

use super::input::{Capacity, RequestPolicy};
use super::quantity::Quantity;

/// What one allocation consumes of `capacity` when the request asks for `requested`.
pub fn consumed(requested: Option<Quantity>, capacity: &Capacity) -> Quantity {
    let Some(requested) = requested else {
        return capacity
            .policy
            .as_ref()
            .and_then(|p| p.default)
            .unwrap_or(capacity.value);
    };
    let Some(policy) = &capacity.policy else {
        return requested;
    };
    if let Some(range) = &policy.valid_range {
        if requested < range.min {
            return range.min;
        }
        let Some(step) = range.step else {
            return requested;
        };
        // Upstream rounds in whole units (`Quantity.Value()`), as here.
        let min = range.min.units_ceil();
        let step = step.units_ceil().max(1);
        let added = requested.units_ceil().saturating_sub(min);
        let n = added.div_ceil(step);
        return Quantity::from_milli(
            min.saturating_add(step.saturating_mul(n))
                .saturating_mul(1000),
        );
    }
    if !policy.valid_values.is_empty() {
        return policy
            .valid_values
            .iter()
            .copied()
            .find(|v| requested <= *v)
            .unwrap_or(requested);
    }
    requested
}

/// Whether `amount` is not allowed by `policy`.
pub fn violates_policy(amount: Quantity, policy: Option<&RequestPolicy>) -> bool {
    let Some(policy) = policy else {
        return false;
    };
    if policy.default == Some(amount) {
        return false;
    }
    if let Some(range) = &policy.valid_range {
        if range.max.is_some_and(|max| amount > max) {
            return true;
        }
        if let Some(step) = range.step {
            let step = step.units_ceil().max(1);
            let added = amount.units_ceil().saturating_sub(range.min.units_ceil());
            return added % step != 0;
        }
        return false;
    }
    if !policy.valid_values.is_empty() {
        return !policy.valid_values.contains(&amount);
    }
    false
}

/// What one allocation of a device with `capacities` consumes for `requests`, per capacity
/// in the device's map order; `None` when the request names a capacity the device lacks
/// (upstream skips such a device).
pub fn consumption(
    requests: &BTreeMap<String, Quantity>,
    capacities: &BTreeMap<String, Capacity>,
) -> Option<Vec<Quantity>> {
    if requests.keys().any(|name| !capacities.contains_key(name)) {
        return None;
    }
    Some(
        capacities
            .iter()
            .map(|(name, cap)| consumed(requests.get(name).copied(), cap))
            .collect(),
    )
}

/// Whether `this` (from [`consumption`]) fits next to `used` (earlier and in-flight shares)
/// on a device with `capacities`.
pub fn fits(this: &[Quantity], used: &[Quantity], capacities: &BTreeMap<String, Capacity>) -> bool {
    capacities.values().enumerate().all(|(slot, cap)| {
        let amount = this.get(slot).copied().unwrap_or_default();
        let before = used.get(slot).copied().unwrap_or_default();
        !violates_policy(amount, cap.policy.as_ref()) && before.plus(amount) <= cap.value
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::input::ValidRange;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_default()
    }

    fn memory_share() -> Capacity {
        Capacity {
            value: q("80Gi"),
            policy: Some(RequestPolicy {
                default: Some(q("79Gi")),
                valid_values: Vec::new(),
                valid_range: Some(ValidRange {
                    min: q("1Gi"),
                    max: Some(q("79Gi")),
                    step: Some(q("1Gi")),
                }),
            }),
        }
    }

    #[test]
    fn request_policy_default_when_the_request_names_nothing() {
        assert_eq!(consumed(None, &memory_share()), q("79Gi"));
        let plain = Capacity {
            value: q("80Gi"),
            policy: None,
        };
        assert_eq!(consumed(None, &plain), q("80Gi"));
    }

    #[test]
    fn valid_range_min_and_step_round_up() {
        assert_eq!(consumed(Some(q("1500Mi")), &memory_share()), q("2Gi"));
        assert_eq!(consumed(Some(q("100Mi")), &memory_share()), q("1Gi"));
        assert_eq!(consumed(Some(q("16Gi")), &memory_share()), q("16Gi"));
        assert!(violates_policy(q("80Gi"), memory_share().policy.as_ref()));
        assert!(!violates_policy(q("79Gi"), memory_share().policy.as_ref()));
    }

    #[test]
    fn valid_values_round_to_the_next_entry() {
        let cap = Capacity {
            value: q("100"),
            policy: Some(RequestPolicy {
                default: Some(q("100")),
                valid_values: vec![q("25"), q("50"), q("100")],
                valid_range: None,
            }),
        };
        assert_eq!(consumed(Some(q("30")), &cap), q("50"));
        assert_eq!(consumed(Some(q("101")), &cap), q("101"));
        assert!(violates_policy(q("101"), cap.policy.as_ref()));
    }
}
