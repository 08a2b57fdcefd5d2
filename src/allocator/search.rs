//! The exhaustive depth-first search that gives the first full solution.
//!
//! Follows `allocateOne`, `isSelectable`, `allocateDevice` and `checkAvailableCounters` in
//! `staging/src/k8s.io/dynamic-resource-allocation/structured/internal/incubating/allocator_incubating.go`
//! (kubernetes-1.36.0; the stable and 1.35 copies do the same minus consumable capacity):
//! claims in order, requests in order, for `firstAvailable` each subrequest in priority order
//! with the rest of the pod searched under it (whole-pod backtracking), and for each device
//! the node's devices in visit order — the next device of the same request starting after the
//! previous one. The first complete assignment wins; nothing is scored.
//!
//! Checked per candidate, in upstream's order: busy → class and request selectors (cached per
//! device and request; a CEL runtime error aborts) → consumable capacity → counters (skipped
//! for a multiply-allocatable device that already has a share) → taints. Known difference:
//! kubernetes-1.36.0 checks counters before taints and does not give back the counters of a
//! device it then drops for a taint, nor those of a dropped share (kubernetes#140436, fixed by
//! #140431); the model checks taints first and always gives counters back, as fixed releases do.

use std::collections::BTreeMap;

use super::capacity;
use super::cel::DeviceView;
use super::error::{AllocatorError, cut};
use super::input::{AllocationMode, TaintEffect, limits};
use super::node::{NodeDevices, PoolStatus};
use super::prepared::{PreparedAlternative, PreparedClaims};
use super::quantity::Quantity;
use super::state::AllocatedState;
use super::{ClaimResult, DeviceResult};

/// Steps (`allocateOne` calls) after which the search gives up. Upstream bounds it by time
/// only (`DynamicResourcesArgs.filterTimeout`, `staging/src/k8s.io/kube-scheduler/config/v1/
/// types.go`); real tessera claims need a few hundred steps.
pub const STEP_BUDGET: u64 = 2_000_000;

/// Why the recursion unwinds.
enum Stop {
    /// Upstream's `errAllocationResultMaxSizeExceeded`: more than 32 results in a claim.
    MaxSize,
    Error(AllocatorError),
}

impl From<AllocatorError> for Stop {
    fn from(e: AllocatorError) -> Stop {
        Stop::Error(e)
    }
}

/// What one taken device changed, to undo it.
struct Taken {
    claim: usize,
    device: usize,
    share: Option<Vec<Quantity>>,
    drew_counters: bool,
}

pub(super) struct Search<'a> {
    node: &'a NodeDevices,
    claims: &'a PreparedClaims,
    visit: Vec<usize>,
    busy: Vec<bool>,
    shares: Vec<u32>,
    capacity_used: Vec<Vec<Quantity>>,
    counters_used: Vec<Quantity>,
    pool_overcommitted: Vec<bool>,
    /// `[alternative × device]` → selector result.
    matches: Vec<Option<bool>>,
    /// `All` alternatives → their devices.
    all_devices: Vec<Vec<usize>>,
    results: Vec<Vec<DeviceResult>>,
    steps: u64,
    max_steps: u64,
}

impl<'a> Search<'a> {
    pub(super) fn new(
        node: &'a NodeDevices,
        state: &AllocatedState,
        claims: &'a PreparedClaims,
        visit: Vec<usize>,
        max_steps: u64,
    ) -> Search<'a> {
        let mut pool_overcommitted = vec![false; node.pools().len()];
        for (counter, used) in state.counters_used.iter().enumerate() {
            if node.counter_totals.get(counter).is_some_and(|t| used > t)
                && let Some(p) = node.counter_pool.get(counter)
                && let Some(flag) = pool_overcommitted.get_mut(*p)
            {
                *flag = true;
            }
        }
        Search {
            node,
            claims,
            visit,
            busy: state.busy.clone(),
            shares: state.shares.clone(),
            capacity_used: state.capacity_used.clone(),
            counters_used: state.counters_used.clone(),
            pool_overcommitted,
            matches: vec![None; claims.alternative_count() * node.device_count()],
            all_devices: vec![Vec::new(); claims.alternative_count()],
            results: vec![Vec::new(); claims.claims.len()],
            steps: 0,
            max_steps,
        }
    }

    /// Runs the search: `Some(results)` for the first full solution, `None` if there is none.
    pub(super) fn run(mut self) -> Result<Option<Vec<ClaimResult>>, AllocatorError> {
        self.prepare_all_requests()?;
        match self.one(0, 0, None, 0, 0) {
            Ok(true) => Ok(Some(
                self.claims
                    .claims
                    .iter()
                    .zip(self.results)
                    .map(|(claim, devices)| ClaimResult {
                        claim: claim.name.clone(),
                        devices,
                    })
                    .collect(),
            )),
            Ok(false) | Err(Stop::MaxSize) => Ok(None),
            Err(Stop::Error(e)) => Err(e),
        }
    }

    /// Upstream's `validateDeviceRequest` for `All`: every alternative that wants all devices
    /// gets its device list up front (refusing incomplete or invalid pools), and every claim's
    /// minimum device count is checked against the result limit.
    fn prepare_all_requests(&mut self) -> Result<(), AllocatorError> {
        let claims = self.claims;
        for claim in &claims.claims {
            let mut min_total = 0usize;
            for request in &claim.requests {
                let mut min_request = usize::MAX;
                for alt in &request.alternatives {
                    let n = match alt.mode {
                        AllocationMode::ExactCount(n) => n as usize,
                        AllocationMode::All => {
                            self.collect_all(&claim.name, alt)?;
                            self.all_devices[alt.global].len()
                        }
                    };
                    min_request = min_request.min(n);
                }
                min_total = min_total.saturating_add(min_request);
            }
            if min_total > limits::RESULTS_PER_CLAIM {
                return Err(AllocatorError::Invalid(format!(
                    "claim {}: number of requested devices {min_total} exceeds the claim limit of {}",
                    claim.name,
                    limits::RESULTS_PER_CLAIM
                )));
            }
        }
        Ok(())
    }

    fn collect_all(
        &mut self,
        claim: &str,
        alt: &PreparedAlternative,
    ) -> Result<(), AllocatorError> {
        for pool in self.node.pools() {
            let why = match &pool.status {
                PoolStatus::Valid => continue,
                PoolStatus::Incomplete => "incomplete".to_owned(),
                PoolStatus::Invalid(reason) => format!("invalid: {reason}"),
            };
            return Err(AllocatorError::AllWithBadPool {
                claim: claim.to_owned(),
                request: alt.result_name.clone(),
                pool: pool.name.clone(),
                why,
            });
        }
        let mut found = Vec::new();
        for position in 0..self.visit.len() {
            let d = self.visit[position];
            if !self.selectable(claim, alt, d)? {
                continue;
            }
            if self.node.features().consumable_capacity && self.consumption(alt, d).is_none() {
                continue;
            }
            found.push(d);
        }
        self.all_devices[alt.global] = found;
        Ok(())
    }

    /// `allocateOne`: place device `k` of request `r` (alternative `sub`) of claim `c`,
    /// trying devices from visit position `start` on.
    fn one(
        &mut self,
        c: usize,
        r: usize,
        sub: Option<usize>,
        k: usize,
        start: usize,
    ) -> Result<bool, Stop> {
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(Stop::Error(AllocatorError::SearchBudget {
                steps: self.steps,
            }));
        }
        let claims = self.claims;
        let Some(claim) = claims.claims.get(c) else {
            return Ok(true);
        };
        let Some(request) = claim.requests.get(r) else {
            return match self.one(c + 1, 0, None, 0, 0) {
                // Another claim's too-large result is not this claim's failure.
                Err(Stop::MaxSize) => Ok(false),
                other => other,
            };
        };
        let alt_index = match sub {
            Some(s) => s,
            None if request.first_available => {
                let mut all_exceeded = true;
                for s in 0..request.alternatives.len() {
                    match self.one(c, r, Some(s), 0, 0) {
                        Err(Stop::MaxSize) => continue,
                        Err(e) => return Err(e),
                        Ok(true) => return Ok(true),
                        Ok(false) => all_exceeded = false,
                    }
                }
                return if all_exceeded {
                    Err(Stop::MaxSize)
                } else {
                    Ok(false)
                };
            }
            None => 0,
        };
        let Some(alt) = request.alternatives.get(alt_index) else {
            return Ok(false);
        };
        let needed = match alt.mode {
            AllocationMode::ExactCount(n) => n as usize,
            AllocationMode::All => {
                let n = self.all_devices[alt.global].len();
                if n == 0 {
                    return Ok(false);
                }
                n
            }
        };
        if k >= needed {
            return self.one(c, r + 1, None, 0, 0);
        }
        if self.results[c].len() + needed - k > limits::RESULTS_PER_CLAIM {
            return Err(Stop::MaxSize);
        }
        if alt.mode == AllocationMode::All {
            let d = self.all_devices[alt.global][k];
            let Some(taken) = self.take(c, alt, d)? else {
                return Ok(false);
            };
            return match self.one(c, r, sub, k + 1, 0) {
                Ok(true) => Ok(true),
                other => {
                    self.give_back(taken);
                    other
                }
            };
        }
        for position in start..self.visit.len() {
            let d = self.visit[position];
            if self.busy[d] {
                continue;
            }
            if !self.selectable(&claim.name, alt, d)? {
                continue;
            }
            let Some(taken) = self.take(c, alt, d)? else {
                continue;
            };
            match self.one(c, r, sub, k + 1, position + 1) {
                Ok(true) => return Ok(true),
                Ok(false) => self.give_back(taken),
                Err(e) => {
                    self.give_back(taken);
                    return Err(e);
                }
            }
        }
        Ok(false)
    }

    /// `isSelectable`: class selectors, then the request's, cached per device.
    fn selectable(
        &mut self,
        claim: &str,
        alt: &PreparedAlternative,
        d: usize,
    ) -> Result<bool, AllocatorError> {
        let slot = alt.global * self.node.device_count() + d;
        if let Some(known) = self.matches.get(slot).copied().flatten() {
            return Ok(known);
        }
        let Some(device) = self.node.device(d) else {
            return Ok(false);
        };
        let Some((driver, _, name)) = self.node.device_id(d) else {
            return Ok(false);
        };
        let mut result = !device.has_binding_conditions || self.node.features().binding_and_status;
        if result {
            let view = DeviceView {
                driver,
                attributes: &device.attributes,
                capacity: &device.capacity,
                allow_multiple_allocations: device.allow_multiple_allocations
                    && self.node.features().consumable_capacity,
            };
            let class = &self.claims.classes[alt.class];
            let owners = class
                .selectors
                .iter()
                .map(|s| (format!("class {}", class.name), s))
                .chain(alt.selectors.iter().map(|s| (format!("claim {claim}"), s)));
            for (owner, selector) in owners {
                match selector.matches(&view) {
                    Ok(true) => {}
                    Ok(false) => {
                        result = false;
                        break;
                    }
                    Err(reason) => {
                        return Err(AllocatorError::SelectorRuntime {
                            owner,
                            expression: cut(selector.expression()),
                            device: name.to_owned(),
                            reason,
                        });
                    }
                }
            }
        }
        if let Some(cell) = self.matches.get_mut(slot) {
            *cell = Some(result);
        }
        Ok(result)
    }

    /// What one allocation of `d` for `alt` consumes, or `None` if it does not fit.
    fn consumption(&self, alt: &PreparedAlternative, d: usize) -> Option<Vec<Quantity>> {
        let device = self.node.device(d)?;
        let this = capacity::consumption(&alt.capacity_requests, &device.capacity)?;
        let multi = device.allow_multiple_allocations;
        let empty = Vec::new();
        let used = if multi {
            &self.capacity_used[d]
        } else {
            &empty
        };
        capacity::fits(&this, used, &device.capacity).then_some(this)
    }

    /// `allocateDevice`: takes `d` for `alt` of claim `c` if nothing forbids it.
    fn take(
        &mut self,
        c: usize,
        alt: &PreparedAlternative,
        d: usize,
    ) -> Result<Option<Taken>, AllocatorError> {
        let node = self.node;
        let features = node.features();
        let Some(device) = node.device(d) else {
            return Ok(None);
        };
        let multi = features.consumable_capacity && device.allow_multiple_allocations;
        if self.busy[d] {
            return Ok(None);
        }
        let consumed = if features.consumable_capacity {
            match self.consumption(alt, d) {
                Some(c) => Some(c),
                None => return Ok(None),
            }
        } else {
            None
        };
        let entry = &node.devices[d];
        if !features.partitionable_devices && entry.consumes_counters {
            return Ok(None);
        }
        if features.device_taints
            && device.taints.iter().any(|taint| {
                matches!(
                    taint.effect,
                    TaintEffect::NoSchedule | TaintEffect::NoExecute
                ) && !alt.tolerations.iter().any(|t| t.tolerates(taint))
            })
        {
            return Ok(None);
        }
        let skip_counters = multi && self.shares[d] > 0;
        let mut drew_counters = false;
        if !skip_counters && !entry.counters.is_empty() {
            if self.pool_overcommitted[entry.pool] {
                return Ok(None);
            }
            let fits = entry.counters.iter().all(|&(counter, amount)| {
                self.counters_used[counter].plus(amount) <= node.counter_totals[counter]
            });
            if !fits {
                return Ok(None);
            }
            for &(counter, amount) in &entry.counters {
                self.counters_used[counter] = self.counters_used[counter].plus(amount);
            }
            drew_counters = true;
        }
        let mut result = DeviceResult {
            request: alt.result_name.clone(),
            device: d,
            share: multi,
            consumed_capacity: BTreeMap::new(),
        };
        let share = if multi {
            let this = consumed.unwrap_or_default();
            for (slot, amount) in this.iter().enumerate() {
                if let Some(used) = self.capacity_used[d].get_mut(slot) {
                    *used = used.plus(*amount);
                }
            }
            result.consumed_capacity = device
                .capacity
                .keys()
                .cloned()
                .zip(this.iter().copied())
                .collect();
            self.shares[d] += 1;
            Some(this)
        } else {
            self.busy[d] = true;
            None
        };
        self.results[c].push(result);
        Ok(Some(Taken {
            claim: c,
            device: d,
            share,
            drew_counters,
        }))
    }

    fn give_back(&mut self, taken: Taken) {
        let d = taken.device;
        self.results[taken.claim].pop();
        match taken.share {
            Some(this) => {
                self.shares[d] = self.shares[d].saturating_sub(1);
                for (slot, amount) in this.iter().enumerate() {
                    if let Some(used) = self.capacity_used[d].get_mut(slot) {
                        *used = used.minus(*amount).unwrap_or_default();
                    }
                }
            }
            None => self.busy[d] = false,
        }
        if taken.drew_counters {
            for &(counter, amount) in &self.node.devices[d].counters {
                self.counters_used[counter] = self.counters_used[counter]
                    .minus(amount)
                    .unwrap_or_default();
            }
        }
    }
}
