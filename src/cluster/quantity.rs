//! Kubernetes resource quantities (`80Gi`, `1500Mi`, `100`, `2.5`, `1e3`) read as whole base
//! units ([`parse_quantity`]) or thousandths of one ([`parse_quantity_milli`], for CPU).
//!
//! Capacities, counters, consumed capacity and extended-resource requests are all
//! quantities. Like `Quantity.Value()` in Go, fractions round **up** (`0.5` → 1, `100m` → 1): a
//! capacity request is never rounded below what was asked.

use super::error::ClusterError;

/// Longest quantity string accepted; the API server's own values are far shorter.
pub const MAX_QUANTITY_LEN: usize = 64;

/// Most significant digits kept in the number part; more cannot fit the exact arithmetic.
const MAX_DIGITS: usize = 38;

/// The value of `text` in whole base units (bytes for memory, counts otherwise), rounded up.
///
/// Errors on an empty, over-long, negative or malformed quantity and on one above `u64::MAX`.
pub fn parse_quantity(text: &str) -> Result<u64, ClusterError> {
    parse_scaled(text, 0)
}

/// The value of `text` in thousandths of the base unit (milli-cores for `cpu`: `500m` → 500,
/// `2` → 2000), rounded up like Go's `Quantity.MilliValue()`, which the scheduler counts CPU
/// in.
///
/// Errors as [`parse_quantity`] does, and on a value whose thousandths exceed `u64::MAX`.
pub fn parse_quantity_milli(text: &str) -> Result<u64, ClusterError> {
    parse_scaled(text, 3)
}

/// The value of `text` × 10^`shift`, rounded up.
fn parse_scaled(text: &str, shift: u32) -> Result<u64, ClusterError> {
    let bad = |problem: &'static str| ClusterError::InvalidQuantity {
        value: text.chars().take(MAX_QUANTITY_LEN).collect(),
        problem,
    };
    if text.len() > MAX_QUANTITY_LEN {
        return Err(bad("is too long"));
    }
    let body = text.trim();
    let body = match body.as_bytes().first() {
        Some(b'-') => {
            // "-0" is still zero; anything else below zero is not a capacity.
            let rest = &body[1..];
            let (mantissa, _) = split_number(rest).ok_or_else(|| bad("is not a number"))?;
            if mantissa.bytes().all(|b| b == b'0' || b == b'.') {
                rest
            } else {
                return Err(bad("is negative"));
            }
        }
        Some(b'+') => &body[1..],
        Some(_) => body,
        None => return Err(bad("is empty")),
    };
    let (number, suffix) = split_number(body).ok_or_else(|| bad("is not a number"))?;
    let (digits, fraction_digits) = mantissa(number).ok_or_else(|| bad("is not a number"))?;
    let scale = Scale::parse(suffix).ok_or_else(|| bad("has an unknown suffix"))?;
    scale
        .apply(digits, fraction_digits, shift)
        .ok_or_else(|| bad("is too large"))
}

/// Splits `12.5Gi` into (`12.5`, `Gi`); `None` when there is no digit.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number = &text[..end];
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((number, &text[end..]))
}

/// The digits of `12.50` as the integer 1250 and 2 fraction digits. Leading zeros are dropped
/// so they do not count against [`MAX_DIGITS`]; trailing fraction zeros likewise.
fn mantissa(number: &str) -> Option<(u128, u32)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => {
            if f.contains('.') {
                return None;
            }
            (w, f.trim_end_matches('0'))
        }
        None => (number, ""),
    };
    let whole = whole.trim_start_matches('0');
    if whole.len() + fraction.len() > MAX_DIGITS {
        return None;
    }
    let mut value: u128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value * 10 + u128::from(b - b'0');
    }
    let fraction_digits = u32::try_from(fraction.len()).ok()?;
    Some((value, fraction_digits))
}

/// A quantity suffix: a power of 1024 or a power of ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Binary(u32),
    Decimal(i32),
}

impl Scale {
    fn parse(suffix: &str) -> Option<Scale> {
        let scale = match suffix {
            "" => Scale::Decimal(0),
            "Ki" => Scale::Binary(1),
            "Mi" => Scale::Binary(2),
            "Gi" => Scale::Binary(3),
            "Ti" => Scale::Binary(4),
            "Pi" => Scale::Binary(5),
            "Ei" => Scale::Binary(6),
            "n" => Scale::Decimal(-9),
            "u" => Scale::Decimal(-6),
            "m" => Scale::Decimal(-3),
            "k" => Scale::Decimal(3),
            "M" => Scale::Decimal(6),
            "G" => Scale::Decimal(9),
            "T" => Scale::Decimal(12),
            "P" => Scale::Decimal(15),
            "E" => Scale::Decimal(18),
            other => {
                // Decimal exponent: `e3`, `E-2`, `e+6`.
                let exponent = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))?;
                let digits = exponent
                    .strip_prefix('+')
                    .or_else(|| exponent.strip_prefix('-'))
                    .unwrap_or(exponent);
                if digits.is_empty()
                    || digits.len() > 3
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                Scale::Decimal(exponent.parse().ok()?)
            }
        };
        Some(scale)
    }

    /// `digits × 10^(shift - fraction_digits) × scale`, rounded up; `None` above `u64::MAX`.
    fn apply(self, digits: u128, fraction_digits: u32, shift: u32) -> Option<u64> {
        let value = match self {
            Scale::Binary(power) => {
                let scaled = digits
                    .checked_mul(1024u128.checked_pow(power)?)?
                    .checked_mul(10u128.checked_pow(shift)?)?;
                div_ceil_pow10(scaled, fraction_digits)
            }
            Scale::Decimal(exponent) => {
                let exponent = i64::from(exponent) + i64::from(shift) - i64::from(fraction_digits);
                if exponent >= 0 {
                    let power = u32::try_from(exponent).ok()?;
                    if digits == 0 {
                        0
                    } else {
                        digits.checked_mul(10u128.checked_pow(power)?)?
                    }
                } else {
                    let power = u32::try_from(-exponent).ok()?;
                    div_ceil_pow10(digits, power)
                }
            }
        };
        u64::try_from(value).ok()
    }
}

/// `value / 10^power`, rounded up; any non-zero value below one unit is 1.
fn div_ceil_pow10(value: u128, power: u32) -> u128 {
    match 10u128.checked_pow(power) {
        Some(divisor) => value.div_ceil(divisor),
        None => u128::from(value > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        for (text, want) in [
            ("0", 0),
            ("100", 100),
            ("1Ki", 1024),
            ("80Gi", 80 * 1024 * 1024 * 1024),
            ("1500Mi", 1500 * 1024 * 1024),
            ("1.5Gi", 3 * 512 * 1024 * 1024),
            ("2k", 2000),
            ("3M", 3_000_000),
            ("1G", 1_000_000_000),
            ("1E", 1_000_000_000_000_000_000),
            ("1e3", 1000),
            ("1E3", 1000),
            ("5e+2", 500),
            ("+7", 7),
            ("007", 7),
            ("-0", 0),
            (" 12 ", 12),
        ] {
            assert_eq!(parse_quantity(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn fractions_round_up_like_go_value() {
        for (text, want) in [
            ("0.5", 1),
            ("100m", 1),
            ("1500m", 2),
            ("1000m", 1),
            ("1n", 1),
            ("0.1Ki", 103),
            ("2.50", 3),
            ("1e-2", 1),
            ("0e-2", 0),
            (".5", 1),
            ("5.", 5),
        ] {
            assert_eq!(parse_quantity(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_quantities_say_why() {
        for (text, problem) in [
            ("", "is empty"),
            ("-1", "is negative"),
            ("-0.5Gi", "is negative"),
            ("Gi", "is not a number"),
            ("1.2.3", "is not a number"),
            ("1Gb", "has an unknown suffix"),
            ("1e", "has an unknown suffix"),
            ("1e99999", "has an unknown suffix"),
            ("20Ei", "is too large"),
            ("1e30", "is too large"),
        ] {
            let err = parse_quantity(text).unwrap_err().to_string();
            assert!(err.contains(problem), "{text:?}: {err}");
        }
        let long = "1".repeat(100);
        assert!(
            parse_quantity(&long)
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
    }

    #[test]
    fn milli_values_round_up_like_go_milli_value() {
        for (text, want) in [
            ("0", 0),
            ("500m", 500),
            ("2", 2000),
            ("1.5", 1500),
            ("0.1", 100),
            ("250m", 250),
            ("1n", 1),
            ("1500u", 2),
            ("0.0001", 1),
            ("1k", 1_000_000),
            ("1Ki", 1_024_000),
            ("0.5Ki", 512_000),
            ("1e-3", 1),
            ("-0", 0),
            (" 4 ", 4000),
            // The largest whole-unit value whose thousandths still fit.
            ("18446744073709551", 18_446_744_073_709_551_000),
            ("18446744073709551615m", u64::MAX),
        ] {
            assert_eq!(parse_quantity_milli(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_milli_quantities_say_why() {
        for (text, problem) in [
            ("", "is empty"),
            ("-500m", "is negative"),
            ("cpu", "is not a number"),
            ("1..5", "is not a number"),
            ("2 cores", "has an unknown suffix"),
            ("1mm", "has an unknown suffix"),
            // Fits u64 as whole units, not as thousandths.
            ("18446744073709552", "is too large"),
            ("18446744073709551616m", "is too large"),
            ("17Ei", "is too large"),
            ("1e17", "is too large"),
        ] {
            let err = parse_quantity_milli(text).unwrap_err().to_string();
            assert!(err.contains(problem), "{text:?}: {err}");
        }
        assert!(
            parse_quantity_milli(&"9".repeat(100))
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = parse_quantity(&s);
            let _ = parse_quantity_milli(&s);
        }

        #[test]
        fn milli_is_a_thousand_times_whole_for_integers(n in 0u64..1_000_000_000) {
            prop_assert_eq!(parse_quantity_milli(&n.to_string()), Ok(n * 1000));
            prop_assert_eq!(parse_quantity_milli(&format!("{n}m")), Ok(n));
        }

        #[test]
        fn integers_with_binary_suffixes_are_exact(n in 0u64..1_000_000, power in 0u32..4) {
            let suffix = ["", "Ki", "Mi", "Gi"][power as usize];
            let want = n * 1024u64.pow(power);
            prop_assert_eq!(parse_quantity(&format!("{n}{suffix}")), Ok(want));
        }
    }
}
