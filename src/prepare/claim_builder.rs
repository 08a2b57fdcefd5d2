//! Builds allocated ResourceClaims the way the scheduler leaves them: the stand-in for real
//! claims in unit tests, integration tests, benches and demos.

use k8s_openapi::api::resource::v1::{
    AllocationResult, DeviceAllocationConfiguration, DeviceAllocationResult,
    DeviceRequestAllocationResult, OpaqueDeviceConfiguration, ResourceClaim, ResourceClaimSpec,
    ResourceClaimStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::ObjectMeta;

/// A ResourceClaim under construction.
#[derive(Debug, Clone)]
pub struct ClaimBuilder {
    claim: ResourceClaim,
    allocated: bool,
}

impl ClaimBuilder {
    /// A claim `namespace/name` with `uid`, allocated but with no devices yet.
    pub fn new(namespace: &str, name: &str, uid: &str) -> Self {
        ClaimBuilder {
            claim: ResourceClaim {
                metadata: ObjectMeta {
                    namespace: Some(namespace.to_owned()),
                    name: Some(name.to_owned()),
                    uid: Some(uid.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: ResourceClaimSpec::default(),
                status: None,
            },
            allocated: true,
        }
    }

    fn devices(&mut self) -> &mut DeviceAllocationResult {
        let status = self
            .claim
            .status
            .get_or_insert_with(ResourceClaimStatus::default);
        let allocation = status
            .allocation
            .get_or_insert_with(AllocationResult::default);
        allocation
            .devices
            .get_or_insert_with(DeviceAllocationResult::default)
    }

    /// Add an exclusive allocation result.
    pub fn device(mut self, request: &str, driver: &str, pool: &str, device: &str) -> Self {
        self.devices()
            .results
            .get_or_insert_with(Vec::new)
            .push(DeviceRequestAllocationResult {
                request: request.to_owned(),
                driver: driver.to_owned(),
                pool: pool.to_owned(),
                device: device.to_owned(),
                ..DeviceRequestAllocationResult::default()
            });
        self
    }

    /// Add one share of a multiply-allocatable device, with the capacity it consumes.
    pub fn share(
        mut self,
        request: &str,
        driver: &str,
        pool: &str,
        device: &str,
        share_id: &str,
        consumed: &[(&str, &str)],
    ) -> Self {
        self.devices()
            .results
            .get_or_insert_with(Vec::new)
            .push(DeviceRequestAllocationResult {
                request: request.to_owned(),
                driver: driver.to_owned(),
                pool: pool.to_owned(),
                device: device.to_owned(),
                share_id: Some(share_id.to_owned()),
                consumed_capacity: Some(
                    consumed
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                        .collect(),
                ),
                ..DeviceRequestAllocationResult::default()
            });
        self
    }

    /// Add an admin-access allocation result.
    pub fn admin_device(mut self, request: &str, driver: &str, pool: &str, device: &str) -> Self {
        self.devices()
            .results
            .get_or_insert_with(Vec::new)
            .push(DeviceRequestAllocationResult {
                request: request.to_owned(),
                driver: driver.to_owned(),
                pool: pool.to_owned(),
                device: device.to_owned(),
                admin_access: Some(true),
                ..DeviceRequestAllocationResult::default()
            });
        self
    }

    /// Add an opaque config entry; `source` is `FromClass` or `FromClaim`.
    pub fn config(
        mut self,
        source: &str,
        driver: &str,
        requests: &[&str],
        parameters: serde_json::Value,
    ) -> Self {
        self.devices()
            .config
            .get_or_insert_with(Vec::new)
            .push(DeviceAllocationConfiguration {
                source: source.to_owned(),
                requests: if requests.is_empty() {
                    None
                } else {
                    Some(requests.iter().map(|r| (*r).to_owned()).collect())
                },
                opaque: Some(OpaqueDeviceConfiguration {
                    driver: driver.to_owned(),
                    parameters: RawExtension(parameters),
                }),
            });
        self
    }

    /// Leave the claim without `status.allocation`.
    pub fn unallocated(mut self) -> Self {
        self.allocated = false;
        self
    }

    /// The finished claim.
    pub fn build(mut self) -> ResourceClaim {
        if !self.allocated {
            self.claim.status = None;
        } else if self.claim.status.is_none() {
            self.devices();
        }
        self.claim
    }
}
