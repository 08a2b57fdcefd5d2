//! Mapping raw scores onto the scheduler extender's integer priority range.

/// The highest priority an extender may return (`extenderv1.MaxExtenderPriority`).
pub const MAX_EXTENDER_PRIORITY: i64 = 10;

/// Maps `scores` (higher is better) linearly onto `0..=10`: the best finite score gets 10,
/// the worst 0, rounding to the nearest integer.
///
/// Equal inputs give equal outputs; when every finite score is equal they all get 10, so the
/// extender expresses no preference. Non-finite scores (NaN, ±∞) get 0. Never panics.
pub fn to_extender_range(scores: &[f64]) -> Vec<i64> {
    let finite = scores.iter().copied().filter(|s| s.is_finite());
    let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    scores
        .iter()
        .map(|&s| {
            if !s.is_finite() {
                return 0;
            }
            if max <= min {
                return MAX_EXTENDER_PRIORITY;
            }
            // Halves first: `max − min` of two finite numbers can overflow to infinity.
            let ratio = (s / 2.0 - min / 2.0) / (max / 2.0 - min / 2.0);
            let scaled = (ratio * MAX_EXTENDER_PRIORITY as f64).round();
            // `as` saturates and maps NaN to 0; the clamp keeps rounding noise in range.
            (scaled as i64).clamp(0, MAX_EXTENDER_PRIORITY)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_gets_ten_worst_zero_and_between_is_linear() {
        assert_eq!(
            to_extender_range(&[-3.0, -1.0, -2.0, -1.5]),
            vec![0, 10, 5, 8]
        );
        assert_eq!(to_extender_range(&[]), Vec::<i64>::new());
    }

    #[test]
    fn equal_scores_get_equal_priorities() {
        assert_eq!(to_extender_range(&[4.2, 4.2, 4.2]), vec![10, 10, 10]);
        assert_eq!(to_extender_range(&[1.0, 2.0, 1.0]), vec![0, 10, 0]);
    }

    #[test]
    fn non_finite_scores_get_zero_and_do_not_stretch_the_range() {
        assert_eq!(
            to_extender_range(&[f64::NAN, 1.0, f64::NEG_INFINITY, 2.0, f64::INFINITY]),
            vec![0, 0, 0, 10, 0]
        );
        assert_eq!(to_extender_range(&[f64::NAN]), vec![0]);
    }

    #[test]
    fn extreme_finite_scores_do_not_overflow() {
        assert_eq!(
            to_extender_range(&[f64::MIN, 0.0, f64::MAX]),
            vec![0, 5, 10]
        );
    }
}
