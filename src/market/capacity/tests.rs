use super::*;

/// The values each capacity label can take in these tests: `None` is "label absent".
/// Each value is tagged with the capacity it announces on its own (`None` = no signal).
fn label_values(key: &str) -> Vec<(Option<&'static str>, Option<CapacityType>)> {
    use CapacityType::{OnDemand, Reserved, Spot};
    match key {
        labels::KARPENTER_CAPACITY_TYPE => vec![
            (None, None),
            (Some("spot"), Some(Spot)),
            (Some("on-demand"), Some(OnDemand)),
            (Some("reserved"), Some(Reserved)),
            (Some("bogus"), None),
        ],
        labels::EKS_CAPACITY_TYPE => vec![
            (None, None),
            (Some("SPOT"), Some(Spot)),
            (Some("ON_DEMAND"), Some(OnDemand)),
            (Some("CAPACITY_BLOCK"), Some(Reserved)),
        ],
        labels::GKE_SPOT | labels::GKE_PREEMPTIBLE => {
            vec![
                (None, None),
                (Some("true"), Some(Spot)),
                (Some("false"), None),
            ]
        }
        labels::AKS_SCALESET_PRIORITY => {
            vec![
                (None, None),
                (Some("spot"), Some(Spot)),
                (Some("regular"), None),
            ]
        }
        _ => vec![(None, None)],
    }
}

const KEYS: [&str; 5] = [
    labels::KARPENTER_CAPACITY_TYPE,
    labels::EKS_CAPACITY_TYPE,
    labels::GKE_SPOT,
    labels::GKE_PREEMPTIBLE,
    labels::AKS_SCALESET_PRIORITY,
];

#[test]
fn every_label_combination_resolves_spot_first_then_reserved_then_on_demand() {
    // Odometer over all 5 × 4 × 3 × 3 × 3 = 540 combinations.
    let choices: Vec<_> = KEYS.iter().map(|k| label_values(k)).collect();
    let mut index = [0usize; 5];
    let mut checked = 0;
    loop {
        let mut node_labels = BTreeMap::new();
        let mut signals = Vec::new();
        for (k, (key, values)) in KEYS.iter().zip(&choices).enumerate() {
            let (value, signal) = values[index[k]];
            if let Some(value) = value {
                node_labels.insert((*key).to_owned(), value.to_owned());
            }
            signals.extend(signal);
        }
        let want = if signals.contains(&CapacityType::Spot) {
            CapacityType::Spot
        } else if signals.contains(&CapacityType::Reserved) {
            CapacityType::Reserved
        } else {
            CapacityType::OnDemand
        };
        assert_eq!(capacity_type(&node_labels), want, "{node_labels:?}");
        checked += 1;
        // Advance the odometer.
        let mut k = 0;
        loop {
            if k == KEYS.len() {
                assert_eq!(checked, 540);
                return;
            }
            index[k] += 1;
            if index[k] < choices[k].len() {
                break;
            }
            index[k] = 0;
            k += 1;
        }
    }
}

#[test]
fn single_labels_resolve_as_documented() {
    let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    assert_eq!(capacity_type(&BTreeMap::new()), CapacityType::OnDemand);
    assert_eq!(
        capacity_type(&one("karpenter.sh/capacity-type", "spot")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one("eks.amazonaws.com/capacityType", "SPOT")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one("cloud.google.com/gke-spot", "true")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one("cloud.google.com/gke-preemptible", "true")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one("kubernetes.azure.com/scalesetpriority", "spot")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one("karpenter.sh/capacity-type", "reserved")),
        CapacityType::Reserved
    );
}

#[test]
fn values_are_compared_ignoring_ascii_case() {
    let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    // The known bug pattern: EKS writes "SPOT", code compares against "spot".
    assert_eq!(
        capacity_type(&one(labels::EKS_CAPACITY_TYPE, "spot")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one(labels::KARPENTER_CAPACITY_TYPE, "SPOT")),
        CapacityType::Spot
    );
    assert_eq!(
        capacity_type(&one(labels::GKE_SPOT, "True")),
        CapacityType::Spot
    );
    // A spot-looking value under an unrelated key means nothing.
    assert_eq!(
        capacity_type(&one("example.com/capacity", "spot")),
        CapacityType::OnDemand
    );
}

#[test]
fn names_match_karpenter_spelling() {
    assert_eq!(CapacityType::OnDemand.to_string(), "on-demand");
    assert_eq!(CapacityType::Spot.as_str(), "spot");
    assert_eq!(CapacityType::Reserved.as_str(), "reserved");
}
