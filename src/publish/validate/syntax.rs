//! The name and value syntaxes of `resource.k8s.io/v1` (as its validation code checks them).

/// A DNS label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS subdomain of at most `max` characters: DNS-label-like parts joined by dots (the
/// parts themselves are not length-limited, as in Kubernetes' check).
pub fn is_dns_subdomain(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// A C identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why a qualified attribute or capacity name is invalid, if it is.
pub fn qualified_name_problem(name: &str) -> Option<String> {
    const MAX_DOMAIN: usize = 63;
    const MAX_ID: usize = 32;
    let check_id = |id: &str| {
        if id.len() > MAX_ID {
            Some(format!(
                "identifier {id:?} is longer than {MAX_ID} characters"
            ))
        } else if !is_c_identifier(id) {
            Some(format!("identifier {id:?} is not a C identifier"))
        } else {
            None
        }
    };
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [id] => check_id(id),
        [domain, id] => {
            if !is_dns_subdomain(domain, MAX_DOMAIN) {
                Some(format!(
                    "domain {domain:?} is not a DNS subdomain of at most {MAX_DOMAIN} characters"
                ))
            } else {
                check_id(id)
            }
        }
        _ => Some("must not contain more than one slash".to_owned()),
    }
}

/// Semantic version 2.0.0, as the API's version attribute regex accepts it.
pub fn is_semver(s: &str) -> bool {
    let (core_pre, build) = match s.split_once('+') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match core_pre.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (core_pre, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let core_ok = {
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| numeric(p))
    };
    let ident =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.')
            .all(|p| ident(p) && (numeric(p) || !p.bytes().all(|b| b.is_ascii_digit())))
    });
    let build_ok = build.is_none_or(|b| b.split('.').all(ident));
    core_ok && pre_ok && build_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kubernetes_syntaxes() {
        assert!(is_dns_label("gpu-0-mig-1g10gb-6"));
        for bad in ["", "-a", "a-", "A", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns_subdomain("gpu.tessera.dev", 63));
        for bad in ["", "a..b", ".a", "a.", "a_b", "Gpu.dev"] {
            assert!(!is_dns_subdomain(bad, 63), "{bad}");
        }
        assert!(!is_dns_subdomain(&"a".repeat(64), 63));
        assert!(is_c_identifier("cudaComputeCapability") && is_c_identifier("_x1"));
        assert!(!is_c_identifier("1x") && !is_c_identifier("a-b") && !is_c_identifier(""));
    }

    #[test]
    fn qualified_names_check_domain_and_identifier() {
        assert_eq!(qualified_name_problem("memory"), None);
        assert_eq!(
            qualified_name_problem("resource.kubernetes.io/pciBusID"),
            None
        );
        assert!(qualified_name_problem("a/b/c").unwrap().contains("slash"));
        assert!(
            qualified_name_problem("Bad_Domain/x")
                .unwrap()
                .contains("domain")
        );
        assert!(
            qualified_name_problem(&"x".repeat(33))
                .unwrap()
                .contains("longer")
        );
        assert!(
            qualified_name_problem("pci-bus")
                .unwrap()
                .contains("C identifier")
        );
    }

    #[test]
    fn semver_matches_the_api_regex() {
        for good in [
            "1.2.3",
            "0.0.0",
            "570.124.6",
            "1.0.0-rc.1",
            "1.0.0+build.5",
            "1.0.0-0a",
        ] {
            assert!(is_semver(good), "{good}");
        }
        for bad in [
            "1.2",
            "01.2.3",
            "1.2.3.4",
            "570.124.06",
            "v1.2.3",
            "1.0.0-01",
            "1.0.0+",
            "",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
