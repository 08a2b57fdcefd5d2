//! Enough of Kubernetes' Quantity syntax to compare and step capacity values exactly.

/// A quantity in nano-units (10⁻⁹), exact for every integer or milli value an API object
/// holds, or `None` if it cannot be read (or does not fit).
pub fn nanos(q: &str) -> Option<i128> {
    let (body, multiplier) = split_suffix(q)?;
    let (sign, body) = match body.as_bytes().first() {
        Some(b'-') => (-1, &body[1..]),
        Some(b'+') => (1, &body[1..]),
        _ => (1, body),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || int.len() + frac.len() > 30
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    let scaled = digits.checked_mul(multiplier)?;
    let divisor = 10_i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    if scaled % divisor != 0 {
        // Finer than a nano-unit: no API value is, and none needs to be compared exactly.
        return None;
    }
    Some(sign * (scaled / divisor))
}

/// The number part and the suffix's multiplier in nano-units.
fn split_suffix(q: &str) -> Option<(&str, i128)> {
    const NANO: i128 = 1_000_000_000;
    const BINARY: [(&str, u32); 6] = [
        ("Ki", 1),
        ("Mi", 2),
        ("Gi", 3),
        ("Ti", 4),
        ("Pi", 5),
        ("Ei", 6),
    ];
    for (suffix, power) in BINARY {
        if let Some(body) = q.strip_suffix(suffix) {
            return Some((body, 1024_i128.pow(power) * NANO));
        }
    }
    if let Some(pos) = q.find(['e', 'E']).filter(|p| p + 1 < q.len()) {
        let exp: i32 = q[pos + 1..].parse().ok()?;
        let power = 10_i128.checked_pow(u32::try_from(exp.checked_add(9)?).ok()?)?;
        return Some((&q[..pos], power));
    }
    const DECIMAL: [(char, i128); 9] = [
        ('n', 1),
        ('u', 1_000),
        ('m', 1_000_000),
        ('k', 1_000 * NANO),
        ('M', 1_000_000 * NANO),
        ('G', 1_000_000_000 * NANO),
        ('T', 1_000_000_000_000 * NANO),
        ('P', 1_000_000_000_000_000 * NANO),
        ('E', 1_000_000_000_000_000_000 * NANO),
    ];
    for (suffix, multiplier) in DECIMAL {
        if let Some(body) = q.strip_suffix(suffix) {
            return Some((body, multiplier));
        }
    }
    Some((q, NANO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: i128 = 1_000_000_000;

    #[test]
    fn quantities_read_exactly() {
        assert_eq!(nanos("100"), Some(100 * N));
        assert_eq!(nanos("80Gi"), Some(80 * (1 << 30) * N));
        assert_eq!(nanos("81559Mi"), Some(81559 * (1 << 20) * N));
        assert_eq!(nanos("500m"), Some(N / 2));
        assert_eq!(nanos("1.5k"), Some(1500 * N));
        assert_eq!(nanos("1e3"), Some(1000 * N));
        assert_eq!(nanos("-2"), Some(-2 * N));
        assert_eq!(nanos("0"), Some(0));
        assert_eq!(nanos("2E"), Some(2_000_000_000_000_000_000 * N));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "Gi",
            "1.2.3",
            "abc",
            "1Xi",
            "1e",
            "1e400",
            &"9".repeat(40),
        ] {
            assert_eq!(nanos(bad), None, "{bad}");
        }
    }
}
