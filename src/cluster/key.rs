//! Compact identities of API objects: `namespace/name` keys and UIDs.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Longest UID kept verbatim; API server UIDs are 36-character UUIDs.
pub const MAX_UID_LEN: usize = 128;

/// A namespaced object's identity, held as one shared `namespace/name` string (names and
/// namespaces cannot contain `/`, so the split is unambiguous). Cluster-scoped objects have no
/// namespace and no slash.
///
/// Maps keyed by `ObjectKey` can be read with a plain `&str` such as `"team-a/claim-1"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(Arc<str>);

impl ObjectKey {
    /// The key of `namespace/name` (just `name` when `namespace` is empty).
    pub fn new(namespace: &str, name: &str) -> Self {
        if namespace.is_empty() {
            ObjectKey(Arc::from(name))
        } else {
            ObjectKey(Arc::from(format!("{namespace}/{name}")))
        }
    }

    /// The namespace, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map_or("", |(ns, _)| ns)
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// `namespace/name` as one string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ObjectKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object UID: a canonical UUID is held in 16 bytes, anything else verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Uid {
    /// A lower-case `8-4-4-4-12` UUID, as the API server writes them, big-endian (a byte
    /// array rather than a `u128` keeps the enum at 24 bytes: no 16-byte alignment).
    Uuid([u8; 16]),
    /// Any other text (cut to [`MAX_UID_LEN`] bytes at a character boundary).
    Other(Box<str>),
}

impl Uid {
    /// The UID for `text`.
    pub fn new(text: &str) -> Self {
        match parse_uuid(text) {
            Some(value) => Uid::Uuid(value.to_be_bytes()),
            None => Uid::Other(truncate(text, MAX_UID_LEN).into()),
        }
    }
}

impl From<&str> for Uid {
    fn from(text: &str) -> Self {
        Uid::new(text)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Uuid(bytes) => {
                let hex = format!("{:032x}", u128::from_be_bytes(*bytes));
                write!(
                    f,
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                )
            }
            Uid::Other(text) => f.write_str(text),
        }
    }
}

/// The value of a lower-case canonical UUID; `None` for anything that would not print back
/// identically.
fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// `text` cut to at most `max` bytes without splitting a character.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_uuids_are_compact_and_print_back() {
        let text = "0f3c2a9e-55b1-4c1e-9d7a-2b8e4f6a1c3d";
        let uid = Uid::new(text);
        assert!(matches!(uid, Uid::Uuid(_)));
        assert_eq!(uid.to_string(), text);
    }

    #[test]
    fn a_uid_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Uid>(), 24);
        assert_eq!(std::mem::size_of::<Option<Uid>>(), 24);
    }

    #[test]
    fn other_uids_are_kept_verbatim() {
        for text in [
            "0F3C2A9E-55B1-4C1E-9D7A-2B8E4F6A1C3D",
            "not-a-uuid",
            "",
            "0f3c2a9e_55b1-4c1e-9d7a-2b8e4f6a1c3d",
        ] {
            let uid = Uid::new(text);
            assert!(matches!(uid, Uid::Other(_)), "{text}");
            assert_eq!(uid.to_string(), text);
        }
        let long = "é".repeat(100);
        assert!(Uid::new(&long).to_string().len() <= MAX_UID_LEN);
    }

    #[test]
    fn keys_print_as_namespace_slash_name_and_split_back() {
        let key = ObjectKey::new("team-a", "claim-1");
        assert_eq!(key.to_string(), "team-a/claim-1");
        assert_eq!((key.namespace(), key.name()), ("team-a", "claim-1"));
        let node = ObjectKey::new("", "node-1");
        assert_eq!(node.to_string(), "node-1");
        assert_eq!((node.namespace(), node.name()), ("", "node-1"));
    }

    #[test]
    fn maps_keyed_by_object_key_are_read_with_a_str() {
        let mut map = std::collections::HashMap::new();
        map.insert(ObjectKey::new("ns", "a"), 1);
        assert_eq!(map.get("ns/a"), Some(&1));
        assert_eq!(map.get("ns/b"), None);
    }

    proptest! {
        #[test]
        fn every_uuid_round_trips(v in any::<u128>()) {
            let text = Uid::Uuid(v.to_be_bytes()).to_string();
            prop_assert_eq!(Uid::new(&text), Uid::Uuid(v.to_be_bytes()));
        }
    }
}
