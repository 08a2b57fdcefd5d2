//! Request policies of consumable capacities: consistent with the capacity they limit.

use k8s_openapi::api::resource::v1::CapacityRequestPolicy;

use super::limits::MAX_VALID_VALUES;
use super::{At, quantity};

pub(super) fn check(at: &mut At<'_>, path: &str, value: i128, policy: &CapacityRequestPolicy) {
    let q = |s: &str| quantity::nanos(s);
    let default = policy.default.as_ref().and_then(|d| q(&d.0));
    match (&policy.valid_values, &policy.valid_range) {
        (Some(_), Some(_)) => at.fail(path, "only one of validValues and validRange may be set"),
        (Some(values), None) => {
            if default.is_none() {
                at.fail(
                    format!("{path}.default"),
                    "required when validValues is set",
                );
            }
            if values.len() > MAX_VALID_VALUES {
                at.fail(
                    format!("{path}.validValues"),
                    format!("has {}, at most {MAX_VALID_VALUES} allowed", values.len()),
                );
            }
            let parsed: Vec<Option<i128>> = values.iter().map(|v| q(&v.0)).collect();
            if parsed.iter().any(Option::is_none) {
                at.fail(
                    format!("{path}.validValues"),
                    "holds a value that is not a quantity",
                );
            }
            let parsed: Vec<i128> = parsed.into_iter().flatten().collect();
            if parsed.windows(2).any(|w| w[0] >= w[1]) {
                at.fail(
                    format!("{path}.validValues"),
                    "must be distinct and ascending",
                );
            }
            if parsed.iter().any(|v| *v > value) {
                at.fail(
                    format!("{path}.validValues"),
                    "holds a value larger than the capacity",
                );
            }
            if default.is_some_and(|d| !parsed.contains(&d)) {
                at.fail(format!("{path}.default"), "must be one of validValues");
            }
        }
        (None, Some(range)) => {
            let Some(default) = default else {
                at.fail(format!("{path}.default"), "required when validRange is set");
                return;
            };
            let Some(min) = q(&range.min.0) else {
                at.fail(format!("{path}.validRange.min"), "is not a quantity");
                return;
            };
            let max = range.max.as_ref().map(|m| q(&m.0));
            let step = range.step.as_ref().map(|s| q(&s.0));
            if min < 0 {
                at.fail(format!("{path}.validRange.min"), "must not be negative");
            }
            if min > value {
                at.fail(
                    format!("{path}.validRange.min"),
                    "is larger than the capacity",
                );
            }
            if default < min {
                at.fail(format!("{path}.default"), "is less than validRange.min");
            }
            match max {
                Some(None) => at.fail(format!("{path}.validRange.max"), "is not a quantity"),
                Some(Some(max)) => {
                    if min > max {
                        at.fail(format!("{path}.validRange.max"), "is less than min");
                    }
                    if max > value {
                        at.fail(
                            format!("{path}.validRange.max"),
                            "is larger than the capacity",
                        );
                    }
                    if default > max {
                        at.fail(format!("{path}.default"), "is more than validRange.max");
                    }
                }
                None => {}
            }
            match step {
                Some(None) => at.fail(format!("{path}.validRange.step"), "is not a quantity"),
                Some(Some(step)) if step <= 0 => at.fail(
                    format!("{path}.validRange.step"),
                    "must be greater than zero",
                ),
                Some(Some(step)) => {
                    if min + step > value {
                        at.fail(
                            format!("{path}.validRange.step"),
                            "one step above min is larger than the capacity",
                        );
                    }
                    if (default - min) % step != 0 {
                        at.fail(
                            format!("{path}.default"),
                            "is not min plus a multiple of step",
                        );
                    }
                    if let Some(Some(max)) = max
                        && (max - min) % step != 0
                    {
                        at.fail(
                            format!("{path}.validRange.max"),
                            "is not min plus a multiple of step",
                        );
                    }
                }
                None => {}
            }
        }
        (None, None) => {}
    }
}
