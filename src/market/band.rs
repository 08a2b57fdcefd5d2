//! Spot Advisor interruption bands and the hourly interruption probability they imply.
//!
//! The Spot Advisor publishes, per region and instance type, a "frequency of interruption" band
//! over the last month. We read a band as "the probability that an instance is interrupted
//! within a 30-day month", take a representative monthly probability per band and convert it to
//! a constant hourly hazard (derivation and caveats in `docs/cost-model.md`).

/// Hours in the 30-day month the Spot Advisor's frequency refers to.
pub const HOURS_PER_MONTH: f64 = 720.0;

/// Monthly interruption probability used for the open-ended `>20%` band.
///
/// The feed gives no upper edge (its `max` is 100). The lower bands are 5 points wide and we use
/// their midpoints; a 5-point band above 20 % would have midpoint 22.5 %, but the `>20%` band
/// also holds types interrupted far more often, so we pick 30 %: clearly above 22.5 % to keep
/// the unknown tail from looking as safe as the 15-20 % band, yet well below the 60 % midpoint
/// of 20-100 %, which no public source supports.
pub const OVER_20_MONTHLY_PROBABILITY: f64 = 0.30;

/// A Spot Advisor "frequency of interruption" band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterruptionBand {
    /// `<5%` (feed index 0).
    Under5,
    /// `5-10%` (feed index 1).
    From5To10,
    /// `10-15%` (feed index 2).
    From10To15,
    /// `15-20%` (feed index 3).
    From15To20,
    /// `>20%` (feed index 4).
    Over20,
}

impl InterruptionBand {
    /// All bands, from least to most interrupted.
    pub const ALL: [Self; 5] = [
        Self::Under5,
        Self::From5To10,
        Self::From10To15,
        Self::From15To20,
        Self::Over20,
    ];

    /// The band for the feed's `r` value (its index into `ranges`), if it is 0..=4.
    pub fn from_index(index: u8) -> Option<Self> {
        match index {
            0 => Some(Self::Under5),
            1 => Some(Self::From5To10),
            2 => Some(Self::From10To15),
            3 => Some(Self::From15To20),
            4 => Some(Self::Over20),
            _ => None,
        }
    }

    /// The band whose feed label is `label` (`<5%`, `5-10%`, `10-15%`, `15-20%`, `>20%`).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|band| band.label() == label)
    }

    /// The feed's `r` value for this band.
    pub fn index(self) -> u8 {
        match self {
            Self::Under5 => 0,
            Self::From5To10 => 1,
            Self::From10To15 => 2,
            Self::From15To20 => 3,
            Self::Over20 => 4,
        }
    }

    /// The feed's label for this band.
    pub fn label(self) -> &'static str {
        match self {
            Self::Under5 => "<5%",
            Self::From5To10 => "5-10%",
            Self::From10To15 => "10-15%",
            Self::From15To20 => "15-20%",
            Self::Over20 => ">20%",
        }
    }

    /// Probability that an instance is interrupted within a 30-day month: the band's midpoint,
    /// or [`OVER_20_MONTHLY_PROBABILITY`] for `>20%`.
    pub fn monthly_interruption_probability(self) -> f64 {
        match self {
            Self::Under5 => 0.025,
            Self::From5To10 => 0.075,
            Self::From10To15 => 0.125,
            Self::From15To20 => 0.175,
            Self::Over20 => OVER_20_MONTHLY_PROBABILITY,
        }
    }

    /// Probability that an instance is interrupted within one hour, assuming a constant hazard
    /// over the month: `p_h = 1 − (1 − p_month)^(1/720)`.
    pub fn hourly_interruption_probability(self) -> f64 {
        hourly_from_monthly(self.monthly_interruption_probability())
    }
}

/// `1 − (1 − p)^(1/720)`, computed as `−expm1(ln(1 − p) / 720)` so that small probabilities keep
/// their precision instead of cancelling against 1.
fn hourly_from_monthly(p_month: f64) -> f64 {
    -((-p_month).ln_1p() / HOURS_PER_MONTH).exp_m1()
}

impl std::fmt::Display for InterruptionBand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_label_round_trip() {
        for (i, band) in InterruptionBand::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(band.index()), i);
            assert_eq!(InterruptionBand::from_index(band.index()), Some(band));
            assert_eq!(InterruptionBand::from_label(band.label()), Some(band));
        }
        assert_eq!(InterruptionBand::from_index(5), None);
        assert_eq!(InterruptionBand::from_label("20%"), None);
        assert_eq!(InterruptionBand::Over20.to_string(), ">20%");
    }

    #[test]
    fn hourly_probability_is_in_open_unit_interval_and_increases_with_band() {
        let hourly: Vec<f64> = InterruptionBand::ALL
            .into_iter()
            .map(InterruptionBand::hourly_interruption_probability)
            .collect();
        for p in &hourly {
            assert!(*p > 0.0 && *p < 1.0, "{p}");
        }
        for pair in hourly.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        let monthly: Vec<f64> = InterruptionBand::ALL
            .into_iter()
            .map(InterruptionBand::monthly_interruption_probability)
            .collect();
        for pair in monthly.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }

    #[test]
    fn hourly_probability_compounds_back_to_the_monthly_one() {
        for band in InterruptionBand::ALL {
            let p_h = band.hourly_interruption_probability();
            let survive_month = (1.0 - p_h).powf(HOURS_PER_MONTH);
            let p_month = 1.0 - survive_month;
            assert!(
                (p_month - band.monthly_interruption_probability()).abs() < 1e-12,
                "{band}"
            );
        }
    }

    #[test]
    fn hourly_probabilities_match_the_table_in_cost_model_doc() {
        // The values printed in docs/cost-model.md, to 5 significant digits.
        let expected = [3.5163e-5, 1.0827e-4, 1.8544e-4, 2.6715e-4, 4.9526e-4];
        for (band, want) in InterruptionBand::ALL.into_iter().zip(expected) {
            let got = band.hourly_interruption_probability();
            assert!((got - want).abs() / want < 1e-4, "{band}: {got} vs {want}");
        }
    }
}
