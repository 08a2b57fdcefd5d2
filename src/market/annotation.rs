//! The per-node price annotation `tessera.dev/hourly-price`.

use std::collections::BTreeMap;

use super::error::{MarketError, shown};
use super::fields::MAX_DOLLARS_PER_HOUR;
use super::labels::HOURLY_PRICE_ANNOTATION;

/// The whole node's price in US dollars per hour from `tessera.dev/hourly-price`, `None` when the
/// annotation is absent.
///
/// Surrounding spaces are ignored. Zero is accepted (an on-premises node already paid for);
/// negative, NaN, infinite and unparsable values are errors, because silently ignoring them would
/// price the node from the catalog while the operator believes their own number is in use.
pub fn node_price_override(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<f64>, MarketError> {
    let Some(raw) = annotations.get(HOURLY_PRICE_ANNOTATION) else {
        return Ok(None);
    };
    let invalid = |problem| MarketError::InvalidAnnotation {
        key: HOURLY_PRICE_ANNOTATION,
        value: shown(raw),
        problem,
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(invalid(
            "is empty; expected US dollars per hour, e.g. \"2.75\"",
        ));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| invalid("is not a number; expected US dollars per hour"))?;
    if !value.is_finite() {
        return Err(invalid("is not a finite number"));
    }
    if value < 0.0 {
        return Err(invalid("is negative"));
    }
    if value > MAX_DOLLARS_PER_HOUR {
        return Err(invalid("is above 1,000,000 dollars per hour"));
    }
    // `+ 0.0` turns "-0" into 0 so callers never see a negative zero.
    Ok(Some(value + 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(HOURLY_PRICE_ANNOTATION.to_owned(), value.to_owned())])
    }

    #[test]
    fn absent_annotation_is_none() {
        assert_eq!(node_price_override(&BTreeMap::new()), Ok(None));
        let other = BTreeMap::from([("tessera.dev/other".to_owned(), "1".to_owned())]);
        assert_eq!(node_price_override(&other), Ok(None));
    }

    #[test]
    fn valid_prices_parse() {
        assert_eq!(node_price_override(&annotations("2.75")), Ok(Some(2.75)));
        assert_eq!(node_price_override(&annotations(" 12 ")), Ok(Some(12.0)));
        assert_eq!(node_price_override(&annotations("1e1")), Ok(Some(10.0)));
        assert_eq!(node_price_override(&annotations("0")), Ok(Some(0.0)));
        let zero = node_price_override(&annotations("-0")).unwrap().unwrap();
        assert!(zero.is_sign_positive());
    }

    #[test]
    fn bad_prices_are_errors_that_say_why() {
        for (value, problem) in [
            ("-1", "is negative"),
            ("-0.01", "is negative"),
            ("NaN", "is not a finite number"),
            ("inf", "is not a finite number"),
            ("-infinity", "is not a finite number"),
            ("1e400", "is not a finite number"),
            ("$2.75", "is not a number"),
            ("2,75", "is not a number"),
            ("", "is empty"),
            ("   ", "is empty"),
        ] {
            let err = node_price_override(&annotations(value)).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("annotation tessera.dev/hourly-price="),
                "{message}"
            );
            assert!(message.contains(problem), "{value:?}: {message}");
        }
    }

    #[test]
    fn long_bad_values_are_shortened_in_the_error() {
        let long = "x".repeat(10_000);
        let message = node_price_override(&annotations(&long))
            .unwrap_err()
            .to_string();
        assert!(message.len() < 300, "{}", message.len());
    }
}
