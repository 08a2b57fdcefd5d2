//! Spread of a value across seeds: median, extremes and quartiles, computed as numpy does so
//! that numbers can be checked against the FGD artifact's pandas/numpy scripts.

use serde::Serialize;

/// Median, extremes and quartiles of one value across the runs (seeds) of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// `numpy.median`: the middle value, or the mean of the two middle values for an even count.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 25th percentile, linear interpolation (`numpy.percentile` default).
    pub p25: f64,
    /// 75th percentile, linear interpolation (`numpy.percentile` default).
    pub p75: f64,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: median_sorted(&sorted)?,
            min: *sorted.first()?,
            max: *sorted.last()?,
            p25: percentile_sorted(&sorted, 25.0)?,
            p75: percentile_sorted(&sorted, 75.0)?,
        })
    }
}

/// `numpy.median` of `values`, or `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    median_sorted(&sorted)
}

fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    let upper = *sorted.get(n / 2)?;
    if n % 2 == 1 {
        return Some(upper);
    }
    // numpy takes the mean of the two middle values, i.e. their sum halved.
    let lower = *sorted.get(n / 2 - 1)?;
    Some((lower + upper) / 2.0)
}

/// Percentile `q` (0..=100) of sorted values with numpy's default "linear" method.
fn percentile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let index = q / 100.0 * last as f64;
    let below = (index.floor() as usize).min(last);
    let above = (below + 1).min(last);
    let t = index - below as f64;
    Some(lerp(*sorted.get(below)?, *sorted.get(above)?, t))
}

/// numpy's `_lerp`: interpolates from the nearer end so that `t = 1` returns `b` exactly.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle_and_interpolates_quartiles() {
        // Sorted: 1 2 3 4 10. p25 index 1.0 → 2; p75 index 3.0 → 4.
        let s = Spread::of(&[10.0, 2.0, 4.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 3.0,
                min: 1.0,
                max: 10.0,
                p25: 2.0,
                p75: 4.0
            }
        );
    }

    #[test]
    fn even_count_averages_the_two_middle_values() {
        // Sorted: 1 2 4 8. Median (2+4)/2 = 3; p25 index 0.75 → 1 + 0.75·1 = 1.75;
        // p75 index 2.25 → 4 + 0.25·4 = 5 (numpy.percentile([1,2,4,8],[25,75]) = [1.75, 5.0]).
        let s = Spread::of(&[8.0, 1.0, 4.0, 2.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 3.0,
                min: 1.0,
                max: 8.0,
                p25: 1.75,
                p75: 5.0
            }
        );
    }

    #[test]
    fn ten_seeds_match_numpy() {
        // numpy.percentile(range(1, 11), [25, 50, 75]) = [3.25, 5.5, 7.75]
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Spread::of(&values).unwrap();
        assert_eq!((s.p25, s.median, s.p75), (3.25, 5.5, 7.75));
    }

    #[test]
    fn single_value_is_every_statistic() {
        let s = Spread::of(&[4.5]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 4.5,
                min: 4.5,
                max: 4.5,
                p25: 4.5,
                p75: 4.5
            }
        );
    }

    #[test]
    fn no_values_give_no_spread() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn median_of_pod_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }
}
