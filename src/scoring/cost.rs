//! The hourly price of the partition a pod would get (`docs/cost-model.md` §2).

use crate::model::{Demand, MILLI_PER_GPU};

/// Price of a partition per hour, US dollars: the node's price per whole GPU-hour times the
/// GPUs' worth the partition holds (`C = P_gpu × f`).
///
/// `gpus` is the partition's size in whole GPUs of the node's model: 0.3 for a 300-milli share,
/// 1/7 for a `1g.10gb` slice of an H100, 2 for two whole GPUs.
pub fn partition_hourly_cost(price_per_gpu_hour: f64, gpus: f64) -> f64 {
    price_per_gpu_hour * gpus
}

/// The GPUs' worth a simulator demand holds: GPU count × share of each GPU (0 for CPU-only).
pub fn demand_gpus(demand: &Demand) -> f64 {
    demand.total_gpu_milli() as f64 / f64::from(MILLI_PER_GPU)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::test_util::demand;

    #[test]
    fn a_share_costs_its_fraction_of_the_gpu_price() {
        assert_eq!(partition_hourly_cost(2.0, 0.25), 0.5);
        assert_eq!(partition_hourly_cost(1.616, 0.125), 0.202);
        assert_eq!(demand_gpus(&demand(1000, 1, 300)), 0.3);
        assert_eq!(demand_gpus(&demand(1000, 2, 1000)), 2.0);
        assert_eq!(demand_gpus(&demand(1000, 0, 0)), 0.0);
    }
}
