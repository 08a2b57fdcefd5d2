//! ResourceSlice names: `<node>-<driver>-counters-<k>` and `<node>-<driver>-devices-<kkk>`.
//!
//! Names are stable (server-side apply updates the same objects), unique per node and driver,
//! and sort in publishing order, which is the order the allocator searches them in. A node
//! name long enough to push a name past the 253-character limit is cut and followed by a hash
//! of the full prefix, so two long names that share a start still differ.

/// Longest object name (a DNS subdomain).
pub const MAX_SLICE_NAME_LEN: usize = 253;

/// Room kept for `-devices-000` and the hash suffix.
const SUFFIX_ROOM: usize = 12 + 9;

/// The name of the `index`-th slice of `part` (`counters` or `devices`).
pub fn slice_name(node: &str, driver: &str, part: &str, index: usize) -> String {
    format!("{}-{part}-{index:03}", prefix(node, driver))
}

fn prefix(node: &str, driver: &str) -> String {
    let full = format!("{node}-{driver}");
    if full.len() + SUFFIX_ROOM <= MAX_SLICE_NAME_LEN {
        return full;
    }
    let hash = crc32fast::hash(full.as_bytes());
    // Names are ASCII (DNS subdomains), so byte slicing is on character boundaries.
    let cut = full
        .get(..MAX_SLICE_NAME_LEN - SUFFIX_ROOM)
        .unwrap_or(&full)
        .trim_end_matches(['-', '.']);
    format!("{cut}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_publishing_order() {
        let a = slice_name("node-1", "gpu.tessera.dev", "devices", 2);
        assert_eq!(a, "node-1-gpu.tessera.dev-devices-002");
        assert!(slice_name("n", "d", "devices", 9) < slice_name("n", "d", "devices", 10));
    }

    #[test]
    fn long_node_names_are_cut_and_hashed() {
        let long = format!("{}.{}", "a".repeat(200), "b".repeat(50));
        let a = slice_name(&long, "gpu.tessera.dev", "devices", 0);
        let b = slice_name(&long.replace('b', "c"), "gpu.tessera.dev", "devices", 0);
        assert!(a.len() <= MAX_SLICE_NAME_LEN, "{}", a.len());
        assert_ne!(a, b);
        assert!(!a.contains(".-") && !a.contains("--"), "{a}");
    }
}
