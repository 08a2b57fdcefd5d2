//! The name rules of the Kubernetes API, applied to every name the kubelet or a claim hands
//! the plugin before it reaches an API URL, a file name or a CDI device name.
//!
//! The kubelet passes whatever namespace, name and UID it has; a name that is not what the
//! API server would ever have stored is not a claim, and checking it here keeps characters
//! such as `/`, `?` or `#` out of `GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>`
//! (where they would address another object or add query parameters) and out of
//! `<cdi-dir>/k8s.<driver>-claim_<uid>.json`.
//!
//! The rules are the API server's, as `k8s.io/apimachinery` v0.34.0
//! `pkg/util/validation/validation.go` defines them (`IsDNS1123Label`, `IsDNS1123Subdomain`)
//! and `k8s.io/kubernetes` v1.34.0 `pkg/apis/resource/validation/validation.go` applies them
//! to claims (name: DNS subdomain; namespace: DNS label, as for every namespace), devices
//! (DNS label) and requests (DNS label, `<request>/<subrequest>` for a subrequest).

use std::fmt;

use thiserror::Error;

/// A DNS label is at most this long (RFC 1123).
pub const DNS_LABEL_MAX: usize = 63;
/// A DNS subdomain is at most this long (RFC 1123).
pub const DNS_SUBDOMAIN_MAX: usize = 253;
/// A UID the API server assigns is an RFC 4122 UUID in its 36-character text form.
pub const UID_MAX: usize = 36;
/// At most this much of a refused value is quoted back, so an error message stays bounded.
const QUOTE_MAX: usize = 80;

/// Which rule a name broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    DnsLabel,
    /// RFC 1123 subdomain: DNS labels joined by `.`, at most 253 characters.
    DnsSubdomain,
    /// An object UID: 1 to 36 characters of `[A-Za-z0-9-]`.
    Uid,
    /// A request name: a DNS label, or `<label>/<label>` for a subrequest.
    RequestName,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::DnsLabel => {
                "DNS label (RFC 1123: at most 63 of a-z, 0-9 and '-', alphanumeric at both ends)"
            }
            Rule::DnsSubdomain => {
                "DNS subdomain (RFC 1123: at most 253 characters, DNS labels joined by '.')"
            }
            Rule::Uid => "UID (at most 36 of A-Z, a-z, 0-9 and '-')",
            Rule::RequestName => "request name (a DNS label, or <request>/<subrequest>)",
        })
    }
}

/// A name that breaks the API's rules for its kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what} {quoted} is not a valid {rule}")]
pub struct NameError {
    /// What the name names: `namespace`, `claim name`, `uid`, `device`, `request`.
    pub what: &'static str,
    /// The value, escaped and cut to a bounded length, for the message.
    pub quoted: String,
    /// The rule it breaks.
    pub rule: Rule,
}

impl NameError {
    fn new(what: &'static str, value: &str, rule: Rule) -> Self {
        let mut quoted: String = format!("{:?}", value.chars().take(QUOTE_MAX).collect::<String>());
        if value.chars().count() > QUOTE_MAX {
            quoted.push_str(&format!(" (cut, {} bytes in all)", value.len()));
        }
        NameError { what, quoted, rule }
    }
}

/// `value` as a DNS label, or why not.
pub fn dns_label(what: &'static str, value: &str) -> Result<(), NameError> {
    if is_label(value) {
        Ok(())
    } else {
        Err(NameError::new(what, value, Rule::DnsLabel))
    }
}

/// `value` as a DNS subdomain, or why not.
pub fn dns_subdomain(what: &'static str, value: &str) -> Result<(), NameError> {
    if !value.is_empty() && value.len() <= DNS_SUBDOMAIN_MAX && value.split('.').all(is_label) {
        Ok(())
    } else {
        Err(NameError::new(what, value, Rule::DnsSubdomain))
    }
}

/// `value` as an object UID, or why not.
pub fn uid(what: &'static str, value: &str) -> Result<(), NameError> {
    let ok = !value.is_empty()
        && value.len() <= UID_MAX
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::new(what, value, Rule::Uid))
    }
}

/// `value` as a request name (`<request>` or `<request>/<subrequest>`), or why not.
pub fn request_name(what: &'static str, value: &str) -> Result<(), NameError> {
    let ok = match value.split_once('/') {
        Some((request, sub)) => is_label(request) && is_label(sub),
        None => is_label(value),
    };
    if ok {
        Ok(())
    } else {
        Err(NameError::new(what, value, Rule::RequestName))
    }
}

fn is_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= DNS_LABEL_MAX
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_rfc_1123() {
        for good in ["a", "default", "team-a", "0", "a1-b2", &"a".repeat(63)] {
            assert!(dns_label("namespace", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "ns1/resourceclaims/claim-a#",
            "a b",
            "ä",
            &"a".repeat(64),
        ] {
            let err = dns_label("namespace", bad).unwrap_err();
            assert_eq!(err.rule, Rule::DnsLabel, "{bad}");
        }
    }

    #[test]
    fn subdomains_are_labels_joined_by_dots() {
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long.len(), 253);
        for good in ["claim-a", "a.b.c", "x0.example.com", long.as_str()] {
            assert!(dns_subdomain("claim name", good).is_ok(), "{good}");
        }
        let too_long = format!("{long}e");
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "claim-a?watch=1",
            "claim-a/status",
            "Claim",
            "%2e%2e",
            too_long.as_str(),
        ] {
            assert!(dns_subdomain("claim name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uids_and_request_names() {
        uid("uid", "5f0c2a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6").unwrap();
        uid("uid", "uid-1").unwrap();
        for bad in ["", "../../etc/x", "a/b", "u\0", &"a".repeat(37)] {
            assert!(uid("uid", bad).is_err(), "{bad:?}");
        }
        request_name("request", "gpu").unwrap();
        request_name("request", "gpu/mig-small").unwrap();
        for bad in ["", "gpu/", "/gpu", "a/b/c", "GPU", "gpu?x"] {
            assert!(request_name("request", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_message_quotes_a_bounded_escaped_value_and_names_the_rule() {
        let err = dns_subdomain("claim name", "claim-a?watch=1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "claim name \"claim-a?watch=1\" is not a valid DNS subdomain (RFC 1123: at most 253 characters, DNS labels joined by '.')"
        );
        let err = dns_label("namespace", &format!("{}\n", "x".repeat(500))).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 300, "{text}");
        assert!(text.contains("(cut, 501 bytes in all)"), "{text}");
        assert!(
            !text.contains('\n'),
            "control characters are escaped: {text}"
        );
    }
}
