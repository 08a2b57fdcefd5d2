//! Capacity a placement hands out beyond what the pod needs.
//!
//! FGD's fragmentation counts idle capacity that typical pods cannot use. In its world a pod
//! is always given exactly its demand, so nothing else can be unusable. With partitions and
//! `firstAvailable` lists a pod may be given more than it asks for (a whole GPU where a MIG
//! slice would do): the surplus is held idle for as long as the pod runs and no pod can use
//! it, the limit case of fragmentation. Counting it in the fragmentation term keeps the
//! blend from preferring to waste a GPU over fragmenting one.

/// GPUs' worth held beyond need: `given − needed`, never negative. NaN inputs count as no
/// surplus.
pub fn surplus_gpus(given: f64, needed: f64) -> f64 {
    let surplus = given - needed;
    if surplus.is_nan() {
        0.0
    } else {
        surplus.max(0.0)
    }
}

/// The fragmentation term, in GPUs, of a placement: the node's fragmentation change plus the
/// capacity given beyond need. For a pod given exactly its demand (every placement the
/// simulator makes) this is the fragmentation change alone.
pub fn placement_frag_gpus(frag_delta_gpus: f64, given_gpus: f64, needed_gpus: f64) -> f64 {
    frag_delta_gpus + surplus_gpus(given_gpus, needed_gpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_capacity_beyond_need_counts() {
        assert_eq!(surplus_gpus(1.0, 1.0 / 7.0), 1.0 - 1.0 / 7.0);
        assert_eq!(surplus_gpus(0.25, 0.5), 0.0, "never negative");
        assert_eq!(surplus_gpus(f64::NAN, 0.5), 0.0);
        assert_eq!(
            placement_frag_gpus(0.3, 0.5, 0.5),
            0.3,
            "exact demand: FGD's term"
        );
        assert_eq!(placement_frag_gpus(-0.2, 2.0, 1.0), 0.8);
    }
}
