//! The human-readable reason a filter gives for a refused node; it ends up in the pod's
//! `FailedScheduling` event, so it names the annotation or taint to look at.

use super::pod::{INTERRUPTION_ANNOTATION, MAX_HOURLY_COST_ANNOTATION, MaxHourlyCost, PodPolicy};
use crate::scoring::filter::Rejection;

/// The reason text for `rejection` of a pod with `policy`.
pub fn text(rejection: &Rejection, policy: &PodPolicy) -> String {
    match rejection {
        Rejection::Deleting => "tessera: node is being deleted".to_owned(),
        Rejection::InterruptionNotice(why) => {
            format!("tessera: {why}; the node is about to go away")
        }
        Rejection::InvalidCeiling => {
            let shown = match &policy.max_hourly_cost {
                MaxHourlyCost::Invalid(v) => v.as_str(),
                _ => "",
            };
            format!(
                "tessera: pod annotation {MAX_HOURLY_COST_ANNOTATION}={shown:?} is not a \
                 non-negative number of US dollars per hour"
            )
        }
        Rejection::IntolerantOnInterruptible => match &policy.unrecognized_tolerance {
            Some(v) => format!(
                "tessera: spot node (can be interrupted), and pod annotation \
                 {INTERRUPTION_ANNOTATION}={v:?} is not one of intolerant, checkpointed, \
                 tolerant (read as intolerant)"
            ),
            None => format!(
                "tessera: spot node (can be interrupted), and the pod is \
                 {INTERRUPTION_ANNOTATION}=intolerant"
            ),
        },
        Rejection::OverCeiling { cost, ceiling } => format!(
            "tessera: pod would cost {cost:.4} $/h here, above its \
             {MAX_HOURLY_COST_ANNOTATION} of {ceiling:.4} $/h"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn reasons_name_what_to_look_at() {
        let plain = PodPolicy::from_annotations(&BTreeMap::new());
        assert!(text(&Rejection::Deleting, &plain).contains("being deleted"));
        assert_eq!(
            text(
                &Rejection::InterruptionNotice("AWS spot interruption notice"),
                &plain
            ),
            "tessera: AWS spot interruption notice; the node is about to go away"
        );
        assert!(
            text(&Rejection::IntolerantOnInterruptible, &plain)
                .contains("tessera.dev/interruption=intolerant")
        );
        let over = text(
            &Rejection::OverCeiling {
                cost: 3.5,
                ceiling: 2.0,
            },
            &plain,
        );
        assert!(
            over.contains("3.5000 $/h") && over.contains("2.0000 $/h"),
            "{over}"
        );

        let odd = PodPolicy::from_annotations(&BTreeMap::from([
            (INTERRUPTION_ANNOTATION.to_owned(), "never".to_owned()),
            (MAX_HOURLY_COST_ANNOTATION.to_owned(), "cheap".to_owned()),
        ]));
        assert!(text(&Rejection::IntolerantOnInterruptible, &odd).contains("\"never\""));
        assert!(text(&Rejection::InvalidCeiling, &odd).contains("\"cheap\""));
    }
}
