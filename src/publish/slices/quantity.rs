//! Quantities and versions in the exact spelling the API server stores, so what tessera
//! renders compares equal to what it reads back.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const KI: u64 = 1024;

/// Bytes in Kubernetes' canonical binary-SI form: the largest of `Ei`…`Ki` that divides the
/// value exactly (`85899345920` → `80Gi`, `85520809984` → `81559Mi`), else plain bytes.
pub fn bytes(n: u64) -> Quantity {
    const SUFFIXES: [(&str, u32); 6] = [
        ("Ei", 6),
        ("Pi", 5),
        ("Ti", 4),
        ("Gi", 3),
        ("Mi", 2),
        ("Ki", 1),
    ];
    if n != 0 {
        for (suffix, power) in SUFFIXES {
            let unit = KI.pow(power);
            if n.is_multiple_of(unit) {
                return Quantity(format!("{}{suffix}", n / unit));
            }
        }
    }
    Quantity(n.to_string())
}

/// A plain count (`7`, `100`).
pub fn count(n: u64) -> Quantity {
    Quantity(n.to_string())
}

/// NVIDIA's version strings as semantic versions, as `version` attributes require:
/// `570.124.06` → `570.124.6`, `9.0` → `9.0.0`, `12.8` → `12.8.0`. `None` for anything that
/// is not one to three dot-separated numbers.
pub fn semver(version: &str) -> Option<String> {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| {
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major] => Some(format!("{major}.0.0")),
        [major, minor] => Some(format!("{major}.{minor}.0")),
        [major, minor, patch] => Some(format!("{major}.{minor}.{patch}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_the_largest_exact_binary_suffix() {
        assert_eq!(bytes(80 * KI * KI * KI).0, "80Gi");
        assert_eq!(bytes(81559 * KI * KI).0, "81559Mi");
        assert_eq!(bytes(1536).0, "1536");
        assert_eq!(bytes(2048).0, "2Ki");
        assert_eq!(bytes(0).0, "0");
        assert_eq!(bytes(1).0, "1");
    }

    #[test]
    fn nvidia_versions_become_semver() {
        assert_eq!(semver("570.124.06").as_deref(), Some("570.124.6"));
        assert_eq!(semver("9.0").as_deref(), Some("9.0.0"));
        assert_eq!(semver("12").as_deref(), Some("12.0.0"));
        for bad in ["", "1.2.3.4", "12.x", "v1.2", "1..2", "1.2-rc1"] {
            assert_eq!(semver(bad), None, "{bad}");
        }
    }
}
