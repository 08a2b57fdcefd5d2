//! Kubernetes quantities (`2`, `500m`, `10Gi`, `1.5e9`) as numbers.
//!
//! Grammar from `k8s.io/apimachinery/pkg/api/resource` (`quantity.go`): a signed decimal number
//! followed by a binary-SI suffix (`Ki` … `Ei`), a decimal-SI suffix (`n`, `u`, `m`, `k`, `M`,
//! `G`, `T`, `P`, `E`) or a decimal exponent (`e3`, `E-2`). Values are returned as `f64`,
//! exact for every whole number below 2^53 (8 PiB of memory), which is all the extender needs.

/// Longest quantity text accepted; real ones are a dozen characters.
const MAX_LEN: usize = 64;

/// Why a quantity does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantity {text:?} {problem}")]
pub struct QuantityError {
    /// The text (shortened when long).
    pub text: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// The value of a quantity.
pub fn parse(text: &str) -> Result<f64, QuantityError> {
    let fail = |problem| QuantityError {
        text: text.chars().take(MAX_LEN).collect(),
        problem,
    };
    if text.len() > MAX_LEN {
        return Err(fail("is too long"));
    }
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(fail("has no number"));
    }
    let value: f64 = number.parse().map_err(|_| fail("has no number"))?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp
                .get(1..)
                .filter(|p| !p.is_empty() && p.len() <= 4)
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| fail("has a bad exponent"))?;
            10f64.powi(power)
        }
        _ => return Err(fail("has an unknown suffix")),
    };
    let out = value * scale;
    if !out.is_finite() {
        return Err(fail("is out of range"));
    }
    // `+ 0.0` turns "-0" into 0.
    Ok(out + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_scale_as_kubernetes_defines_them() {
        for (text, want) in [
            ("2", 2.0),
            ("+3", 3.0),
            ("500m", 0.5),
            ("1.5", 1.5),
            (".5", 0.5),
            ("10Gi", 10.0 * 1024.0 * 1024.0 * 1024.0),
            ("1500Mi", 1500.0 * 1024.0 * 1024.0),
            ("80G", 80e9),
            ("1k", 1000.0),
            ("1e3", 1000.0),
            ("25E-2", 0.25),
            ("-1", -1.0),
            ("0", 0.0),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_quantities_say_why() {
        for (text, problem) in [
            ("", "has no number"),
            ("Gi", "has no number"),
            ("1.2.3", "has no number"),
            ("-", "has no number"),
            ("10GB", "has an unknown suffix"),
            ("10 Gi", "has an unknown suffix"),
            ("1e", "has a bad exponent"),
            ("1e99999", "has a bad exponent"),
            ("1e400", "is out of range"),
        ] {
            assert_eq!(parse(text).map_err(|e| e.problem), Err(problem), "{text}");
        }
        assert_eq!(parse(&"9".repeat(65)).unwrap_err().problem, "is too long");
    }
}
