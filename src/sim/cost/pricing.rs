//! Prices and spot risk of simulated nodes: the openb GPU models mapped onto catalog instance
//! types (`docs/cost-model.md` §6), resolved through `market` exactly as the extender resolves
//! a labelled node.

use std::collections::BTreeMap;

use crate::market::{
    self, CapacityType, InterruptionBand, MarketError, PriceCatalog, PriceSource, SpotAdvisor,
};
use crate::trace::TraceNode;

/// Region the simulated nodes are priced in: the built-in AWS rows and Spot Advisor bands are
/// for `us-east-1`.
pub const SIM_REGION: &str = "us-east-1";

/// The instance type an openb node of `model` with `gpus` GPUs is priced as; `None` for a
/// model the mapping does not know (such nodes get the fallback price).
///
/// Same GPU (or the closest AWS offers) and, where a family has several sizes, the size with
/// the node's GPU count or the nearest larger one; the node is priced at that instance's price
/// per GPU-hour times its own GPU count. The choices, G2 and G3 in particular, are justified in
/// `docs/cost-model.md` §6.
pub fn openb_instance_type(model: &str, gpus: u32) -> Option<&'static str> {
    let instance = match (model, gpus) {
        ("T4", 0..=1) => "g4dn.xlarge",
        ("T4", 2..=4) => "g4dn.12xlarge",
        ("T4", _) => "g4dn.metal",
        ("V100M16", 0..=1) => "p3.2xlarge",
        ("V100M16", 2..=4) => "p3.8xlarge",
        ("V100M16", _) => "p3.16xlarge",
        ("V100M32", _) => "p3dn.24xlarge",
        ("P100", _) => "attached GPU: nvidia-tesla-p100",
        ("A10", _) => "g5.xlarge",
        ("G2", _) => "p4d.24xlarge",
        ("G3", _) => "p4de.24xlarge",
        _ => return None,
    };
    Some(instance)
}

/// One simulated node's price and risk for one capacity type.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePrice {
    /// On-demand, spot or reserved.
    pub capacity: CapacityType,
    /// Price of one whole GPU of the node per hour, US dollars.
    pub price_per_gpu_hour: f64,
    /// Price of the whole node per hour, US dollars.
    pub node_hourly_price: f64,
    /// Probability the node is interrupted within an hour.
    pub hourly_interruption_probability: f64,
    /// Spot Advisor band used (spot only).
    pub band: Option<InterruptionBand>,
    /// Where the price came from ([`PriceSource::Annotation`] for the `hourly_price` column).
    pub source: PriceSource,
}

/// What a simulated node would cost on-demand and on spot, and whether the node list fixes
/// its capacity type.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOffers {
    /// Instance type the node is priced as (column `instance_type`, else the openb mapping).
    pub instance_type: Option<String>,
    /// The node bought on-demand (or reserved, when the node list says so).
    pub on_demand: NodePrice,
    /// The node bought as spot.
    pub spot: NodePrice,
    /// Capacity type from the node list's `capacity_type` column, if given; otherwise the
    /// experiment's seeded spot share decides.
    pub fixed: Option<CapacityType>,
}

impl NodeOffers {
    /// The price for the node as `spot` (or not).
    pub fn priced(&self, spot: bool) -> &NodePrice {
        if spot { &self.spot } else { &self.on_demand }
    }
}

/// Prices `node` on-demand and on spot from the catalog and the Spot Advisor.
///
/// The catalog gives a price per GPU-hour for the instance type (`market::node_market`, the
/// same resolution the extender applies to a labelled node); the node costs that times its own
/// GPU count, since openb nodes do not have the catalog instance's exact shape. A node-list
/// `hourly_price` replaces the whole node's price, as the `tessera.dev/hourly-price`
/// annotation does.
pub fn node_offers(
    node: &TraceNode,
    catalog: &PriceCatalog,
    advisor: &SpotAdvisor,
) -> Result<NodeOffers, MarketError> {
    let instance_type = node.instance_type.clone().or_else(|| {
        node.model
            .as_deref()
            .and_then(|m| openb_instance_type(m, node.gpus))
            .map(str::to_owned)
    });
    let not_spot = match node.capacity {
        Some(CapacityType::Reserved) => CapacityType::Reserved,
        _ => CapacityType::OnDemand,
    };
    let price = |capacity| price_as(node, instance_type.as_deref(), capacity, catalog, advisor);
    Ok(NodeOffers {
        on_demand: price(not_spot)?,
        spot: price(CapacityType::Spot)?,
        instance_type,
        fixed: node.capacity,
    })
}

fn price_as(
    node: &TraceNode,
    instance_type: Option<&str>,
    capacity: CapacityType,
    catalog: &PriceCatalog,
    advisor: &SpotAdvisor,
) -> Result<NodePrice, MarketError> {
    let mut labels = BTreeMap::from([
        (market::labels::REGION.to_owned(), SIM_REGION.to_owned()),
        (
            market::labels::KARPENTER_CAPACITY_TYPE.to_owned(),
            capacity.as_str().to_owned(),
        ),
    ]);
    if let Some(t) = instance_type {
        labels.insert(market::labels::INSTANCE_TYPE.to_owned(), t.to_owned());
    }
    let resolved = market::node_market(&labels, &BTreeMap::new(), node.gpus, catalog, advisor)?;
    let gpus = f64::from(node.gpus);
    let catalog_per_gpu = resolved.price_per_gpu_hour().unwrap_or(0.0);
    let (node_hourly_price, source) = match node.hourly_price {
        Some(price) => (price, PriceSource::Annotation),
        None => (catalog_per_gpu * gpus, resolved.source),
    };
    let price_per_gpu_hour = if gpus > 0.0 {
        node_hourly_price / gpus
    } else {
        0.0
    };
    Ok(NodePrice {
        capacity: resolved.capacity,
        price_per_gpu_hour,
        node_hourly_price,
        hourly_interruption_probability: resolved.hourly_interruption_probability,
        band: resolved.band,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_util::tnode;

    fn builtin() -> (PriceCatalog, SpotAdvisor) {
        (
            PriceCatalog::builtin().unwrap(),
            SpotAdvisor::builtin().unwrap(),
        )
    }

    #[test]
    fn every_openb_model_maps_to_a_catalog_row() {
        let (catalog, _) = builtin();
        for (model, gpus) in [
            ("G2", 8),
            ("G3", 8),
            ("T4", 2),
            ("T4", 4),
            ("P100", 2),
            ("P100", 1),
            ("V100M16", 1),
            ("V100M16", 4),
            ("V100M16", 8),
            ("V100M32", 4),
            ("V100M32", 8),
            ("A10", 1),
        ] {
            let t = openb_instance_type(model, gpus).unwrap();
            assert!(
                catalog.lookup(t, Some(SIM_REGION)).is_some(),
                "{model}: {t}"
            );
        }
        assert_eq!(openb_instance_type("G9", 8), None);
    }

    #[test]
    fn a_g2_node_costs_eight_p4d_gpu_hours_and_less_on_spot() {
        let (catalog, advisor) = builtin();
        let offers = node_offers(&tnode("n", 8, "G2"), &catalog, &advisor).unwrap();
        assert_eq!(offers.instance_type.as_deref(), Some("p4d.24xlarge"));
        let od = &offers.on_demand;
        assert!((od.price_per_gpu_hour - 21.957642 / 8.0).abs() < 1e-9);
        assert!((od.node_hourly_price - 21.957642).abs() < 1e-9);
        assert_eq!(od.hourly_interruption_probability, 0.0);
        let spot = &offers.spot;
        assert_eq!(spot.capacity, CapacityType::Spot);
        assert!(spot.node_hourly_price < od.node_hourly_price);
        assert_eq!(spot.band, Some(InterruptionBand::From10To15));
        assert!(spot.hourly_interruption_probability > 0.0);
    }

    #[test]
    fn a_two_gpu_t4_node_is_priced_per_gpu_not_per_instance() {
        let (catalog, advisor) = builtin();
        let offers = node_offers(&tnode("n", 2, "T4"), &catalog, &advisor).unwrap();
        assert!((offers.on_demand.node_hourly_price - 2.0 * 3.912 / 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_node_list_can_fix_price_type_and_capacity() {
        let (catalog, advisor) = builtin();
        let mut node = tnode("n", 4, "H100");
        node.instance_type = Some("p5.48xlarge".into());
        node.capacity = Some(CapacityType::Spot);
        let offers = node_offers(&node, &catalog, &advisor).unwrap();
        assert_eq!(offers.fixed, Some(CapacityType::Spot));
        assert!((offers.on_demand.price_per_gpu_hour - 6.88).abs() < 1e-9);
        node.hourly_price = Some(10.0);
        let offers = node_offers(&node, &catalog, &advisor).unwrap();
        assert_eq!(offers.spot.node_hourly_price, 10.0);
        assert_eq!(offers.spot.price_per_gpu_hour, 2.5);
        assert_eq!(offers.spot.source, PriceSource::Annotation);
    }

    #[test]
    fn unknown_models_get_the_fallback_price() {
        let (catalog, advisor) = builtin();
        let offers = node_offers(&tnode("n", 2, "G9"), &catalog, &advisor).unwrap();
        assert_eq!(offers.instance_type, None);
        assert_eq!(offers.on_demand.source, PriceSource::Fallback);
        assert!(
            (offers.on_demand.price_per_gpu_hour - market::FALLBACK_USD_PER_GPU_HOUR).abs() < 1e-12
        );
    }
}
