//! Resource quantities as the allocator compares and adds them: exact thousandths of the base
//! unit (`80Gi`, `1500Mi`, `25`, `0.5`, `100m`), anything finer rounded up.
//!
//! Go's `resource.Quantity` is exact at any scale; thousandths cover every capacity, counter
//! and request tessera publishes or its examples ask for, and rounding a finer request up
//! never makes the model hand out less than asked.

use super::error::AllocatorError;

/// Longest quantity text accepted; the API server's own are far shorter.
const MAX_LEN: usize = 64;

/// A non-negative quantity in thousandths of its base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(u128);

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity(0);

    /// `units` whole base units (bytes, counts).
    pub fn from_units(units: u64) -> Quantity {
        Quantity(u128::from(units) * 1000)
    }

    /// Thousandths of the base unit.
    pub fn milli(self) -> u128 {
        self.0
    }

    /// From thousandths of the base unit.
    pub fn from_milli(milli: u128) -> Quantity {
        Quantity(milli)
    }

    /// Whole base units, rounded up like Go's `Quantity.Value()`.
    pub fn units_ceil(self) -> u128 {
        self.0.div_ceil(1000)
    }

    /// Sum, saturating (quantities this large are rejected at parse time anyway).
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(other.0))
    }

    /// Difference, or `None` below zero.
    pub fn minus(self, other: Quantity) -> Option<Quantity> {
        self.0.checked_sub(other.0).map(Quantity)
    }

    /// Parses a Kubernetes quantity string.
    pub fn parse(text: &str) -> Result<Quantity, AllocatorError> {
        let bad = |why: &str| {
            AllocatorError::Invalid(format!(
                "quantity {:?} {why}",
                text.chars().take(MAX_LEN).collect::<String>()
            ))
        };
        if text.len() > MAX_LEN {
            return Err(bad("is too long"));
        }
        let body = text.trim();
        let body = body.strip_prefix('+').unwrap_or(body);
        if let Some(rest) = body.strip_prefix('-') {
            if !rest.is_empty() && rest.bytes().all(|b| b == b'0' || b == b'.') {
                return Ok(Quantity::ZERO);
            }
            return Err(bad("is negative"));
        }
        let end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(end);
        if !number.bytes().any(|b| b.is_ascii_digit()) {
            return Err(bad("is not a number"));
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') {
            return Err(bad("is not a number"));
        }
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if whole.len() + fraction.len() > 30 {
            return Err(bad("has too many digits"));
        }
        let mut digits: u128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            digits = digits * 10 + u128::from(b - b'0');
        }
        // value = digits × 10^(-fraction_len) × scale; in thousandths: × 1000.
        let fraction_len = i32::try_from(fraction.len()).map_err(|_| bad("is too long"))?;
        let (binary_power, decimal_exponent): (u32, i32) = match suffix {
            "" => (0, 0),
            "Ki" => (1, 0),
            "Mi" => (2, 0),
            "Gi" => (3, 0),
            "Ti" => (4, 0),
            "Pi" => (5, 0),
            "Ei" => (6, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            other => {
                let exponent = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))
                    .ok_or_else(|| bad("has an unknown suffix"))?;
                let parsed: i32 = exponent.parse().map_err(|_| bad("has an unknown suffix"))?;
                if !(-30..=30).contains(&parsed) {
                    return Err(bad("is out of range"));
                }
                (0, parsed)
            }
        };
        let scaled = digits
            .checked_mul(1024u128.pow(binary_power))
            .ok_or_else(|| bad("is too large"))?;
        let exponent = decimal_exponent + 3 - fraction_len;
        let milli = if exponent >= 0 {
            let power = 10u128
                .checked_pow(exponent.unsigned_abs())
                .ok_or_else(|| bad("is too large"))?;
            scaled
                .checked_mul(power)
                .ok_or_else(|| bad("is too large"))?
        } else {
            match 10u128.checked_pow(exponent.unsigned_abs()) {
                Some(divisor) => scaled.div_ceil(divisor),
                None => u128::from(scaled > 0),
            }
        };
        // Far above any device's capacity (an exbibyte is ~1.2e21 thousandths).
        if milli > 1u128 << 100 {
            return Err(bad("is too large"));
        }
        Ok(Quantity(milli))
    }
}

impl std::fmt::Display for Quantity {
    /// The shortest exact form: binary suffixes where whole, else a plain number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.0.is_multiple_of(1000) {
            let whole = self.0 / 1000;
            let frac = self.0 % 1000;
            let text = format!("{whole}.{frac:03}");
            return f.write_str(text.trim_end_matches('0'));
        }
        let units = self.0 / 1000;
        if units == 0 {
            return f.write_str("0");
        }
        for (suffix, power) in [("Ti", 4u32), ("Gi", 3), ("Mi", 2), ("Ki", 1)] {
            let base = 1024u128.pow(power);
            if units.is_multiple_of(base) {
                return write!(f, "{}{suffix}", units / base);
            }
        }
        write!(f, "{units}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_and_fractions() {
        let q = |t: &str| Quantity::parse(t).map(Quantity::milli);
        assert_eq!(q("80Gi"), Ok(80 * (1u128 << 30) * 1000));
        assert_eq!(q("1500Mi"), Ok(1500 * (1u128 << 20) * 1000));
        assert_eq!(q("25"), Ok(25_000));
        assert_eq!(q("0.5"), Ok(500));
        assert_eq!(q("100m"), Ok(100));
        assert_eq!(q("1n"), Ok(1), "finer than a thousandth rounds up");
        assert_eq!(q("2k"), Ok(2_000_000));
        assert_eq!(q("1e3"), Ok(1_000_000));
        assert!(Quantity::parse("-1").is_err());
        assert!(Quantity::parse("1Qi").is_err());
        assert!(Quantity::parse("").is_err());
        assert!(Quantity::parse(&"9".repeat(70)).is_err());
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        for text in ["80Gi", "2Gi", "1500Mi", "25", "0.5", "0"] {
            let parsed = Quantity::parse(text).map(|q| q.to_string());
            assert_eq!(parsed.as_deref(), Ok(text));
        }
    }
}
