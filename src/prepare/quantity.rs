//! Kubernetes quantities (`4Gi`, `1500Mi`, `50`, `1.5G`, `500m`) as whole numbers.
//!
//! Prepare reads them from allocation results (`consumedCapacity`) and from opaque config
//! (`pinnedMemoryLimit`). Only the forms the API server emits and users write are accepted:
//! a decimal number with an optional binary (`Ki`…`Ei`) or decimal (`m`, `k`…`E`) suffix.
//! Fractions are rounded up, as the allocator rounds capacity requests up.

use thiserror::Error;

/// Longest quantity text accepted; real ones are a handful of characters.
const MAX_LEN: usize = 64;

/// Why a quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    /// Not a number with a known suffix.
    #[error("{text:?} is not a quantity (want e.g. 4Gi, 1500Mi, 50, 1.5G)")]
    Malformed {
        /// The text, cut to the length limit.
        text: String,
    },
    /// Negative, or larger than 2^64 - 1 units.
    #[error("{text:?} is out of range")]
    OutOfRange {
        /// The text.
        text: String,
    },
}

/// The value of `text` in whole units, rounded up.
pub fn parse_quantity(text: &str) -> Result<u64, QuantityError> {
    let malformed = || QuantityError::Malformed {
        text: text.chars().take(MAX_LEN).collect(),
    };
    if text.is_empty() || text.len() > MAX_LEN {
        return Err(malformed());
    }
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    // (multiplier numerator, divisor) so milli-units stay exact.
    let (mul, div): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => return Err(malformed()),
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 18 {
        return Err(malformed());
    }
    let digits = format!("{whole}{frac}");
    let mantissa: u128 = digits.parse().map_err(|_| malformed())?;
    let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| malformed())?);
    let numerator = mantissa
        .checked_mul(mul)
        .ok_or_else(|| QuantityError::OutOfRange {
            text: text.to_owned(),
        })?;
    let denominator = scale * div;
    let value = numerator.div_ceil(denominator);
    u64::try_from(value).map_err(|_| QuantityError::OutOfRange {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_and_fractional_forms() {
        assert_eq!(parse_quantity("4Gi"), Ok(4 << 30));
        assert_eq!(parse_quantity("1500Mi"), Ok(1500 << 20));
        assert_eq!(parse_quantity("50"), Ok(50));
        assert_eq!(parse_quantity("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_quantity("0.5Ki"), Ok(512));
        assert_eq!(parse_quantity("1500m"), Ok(2), "milli-units round up");
        assert_eq!(parse_quantity("80Gi"), Ok(85_899_345_920));
    }

    #[test]
    fn garbage_and_overflow_are_refused() {
        for bad in [
            "",
            "Gi",
            "-1",
            "1.2.3",
            "4GB",
            "4 Gi",
            ".",
            "1e3",
            &"9".repeat(80),
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            parse_quantity("100Ei"),
            Err(QuantityError::OutOfRange { .. })
        ));
    }
}
