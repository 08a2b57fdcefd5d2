//! Small builders for allocator tests: a test driver `gpu.test`, one pool `node-1`.

use std::collections::BTreeMap;

use crate::allocator::*;

pub const DRIVER: &str = "gpu.test";
pub const POOL: &str = "node-1";

pub fn q(text: &str) -> Quantity {
    Quantity::parse(text).expect("quantity")
}

pub fn slice(name: &str, devices: Vec<Device>) -> Slice {
    Slice {
        name: name.into(),
        driver: DRIVER.into(),
        pool: POOL.into(),
        generation: 1,
        resource_slice_count: 1,
        devices,
        shared_counters: Vec::new(),
    }
}

pub trait SliceExt {
    fn count(self, n: i64) -> Slice;
}

impl SliceExt for Slice {
    fn count(mut self, n: i64) -> Slice {
        self.resource_slice_count = n;
        self
    }
}

fn typed(name: &str, kind: &str, memory: &str) -> Device {
    let mut d = Device::named(name);
    d.attributes.insert(
        format!("{DRIVER}/type"),
        AttributeValue::String(kind.into()),
    );
    d.capacity.insert(
        format!("{DRIVER}/memory"),
        Capacity {
            value: q(memory),
            policy: None,
        },
    );
    d
}

pub fn gpu(name: &str, memory: &str) -> Device {
    typed(name, "gpu", memory)
}

pub fn mig(name: &str, memory: &str) -> Device {
    typed(name, "mig", memory)
}

/// A shared H100 80GB as tessera publishes it: 81559Mi, default 79Gi, 1Gi..79Gi in steps of
/// 1Gi.
pub fn shared(name: &str) -> Device {
    let mut d = typed(name, "shared", "81559Mi");
    d.allow_multiple_allocations = true;
    d.capacity.insert(
        format!("{DRIVER}/memory"),
        Capacity {
            value: q("81559Mi"),
            policy: Some(RequestPolicy {
                default: Some(q("79Gi")),
                valid_values: Vec::new(),
                valid_range: Some(ValidRange {
                    min: q("1Gi"),
                    max: Some(q("79Gi")),
                    step: Some(q("1Gi")),
                }),
            }),
        },
    );
    d
}

pub fn consume(counters: &[(&str, &str)]) -> CounterConsumption {
    CounterConsumption {
        counter_set: "gpu-0".into(),
        counters: counters
            .iter()
            .map(|(n, v)| ((*n).to_owned(), q(v)))
            .collect(),
    }
}

/// A counters slice (one GPU of 8 memory slices) and a device slice with the whole GPU
/// and two halves, all drawing on it.
pub fn partitioned_gpu() -> Vec<Slice> {
    let mut counters = slice("a-counters", Vec::new()).count(2);
    counters.shared_counters.push(CounterSet {
        name: "gpu-0".into(),
        counters: BTreeMap::from([("slices".to_owned(), q("8"))]),
    });
    let mut whole = gpu("gpu-0", "80Gi");
    whole.consumes_counters = vec![consume(&[("slices", "8")])];
    let mut halves = Vec::new();
    for i in 0..2 {
        let mut h = typed(&format!("gpu-0-half-{i}"), "half", "40Gi");
        h.consumes_counters = vec![consume(&[("slices", "4")])];
        halves.push(h);
    }
    let mut devices = vec![whole];
    devices.extend(halves);
    vec![counters, slice("b-devices", devices).count(2)]
}

pub fn classes() -> Classes {
    let class = |name: &str, expression: String| DeviceClass {
        name: name.into(),
        selectors: vec![expression],
    };
    let typed = |t: &str| {
        format!("device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == '{t}'")
    };
    Classes::new(&[
        class("gpu-class", typed("gpu")),
        class("mig-class", typed("mig")),
        class("shared-class", typed("shared")),
        class("any-class", format!("device.driver == '{DRIVER}'")),
    ])
}

pub fn node(slices: Vec<Slice>, features: Features) -> NodeDevices {
    NodeDevices::new(slices, features).expect("node")
}

pub fn node_of(slices: Vec<Slice>, features: Features) -> NodeDevices {
    node(slices, features)
}

pub fn claim(name: &str, requests: Vec<Request>) -> Claim {
    Claim {
        name: name.into(),
        requests,
    }
}

pub fn exactly(name: &str, class: &str) -> Request {
    Request::Exactly(DeviceChoice::one(name, class))
}

pub fn first_available(name: &str, alternatives: Vec<Request>) -> Request {
    Request::FirstAvailable {
        name: name.into(),
        subrequests: alternatives
            .into_iter()
            .filter_map(|r| match r {
                Request::Exactly(c) => Some(c),
                Request::FirstAvailable { .. } => None,
            })
            .collect(),
    }
}

pub trait RequestExt {
    fn choice(self, edit: impl FnOnce(&mut DeviceChoice)) -> Request;
    fn selector(self, expression: &str) -> Request
    where
        Self: Sized,
    {
        let e = expression.to_owned();
        self.choice(|c| c.selectors.push(e))
    }
    fn capacity(self, name: &str, amount: &str) -> Request
    where
        Self: Sized,
    {
        let (n, a) = (format!("{DRIVER}/{name}"), q(amount));
        self.choice(|c| {
            c.capacity_requests.insert(n, a);
        })
    }
    fn mode(self, mode: AllocationMode) -> Request
    where
        Self: Sized,
    {
        self.choice(|c| c.mode = mode)
    }
    fn tolerate(self, toleration: Toleration) -> Request
    where
        Self: Sized,
    {
        self.choice(|c| c.tolerations.push(toleration))
    }
}

impl RequestExt for Request {
    fn choice(mut self, edit: impl FnOnce(&mut DeviceChoice)) -> Request {
        if let Request::Exactly(c) = &mut self {
            edit(c);
        }
        self
    }
}

pub fn prepare(node: &NodeDevices, claims: &[Claim]) -> PreparedClaims {
    PreparedClaims::new(claims, &classes(), node.features()).expect("prepare")
}

pub fn run(node: &NodeDevices, claims: &[Claim], order: &SliceOrder) -> Outcome {
    allocate(
        node,
        &AllocatedState::empty(node),
        &prepare(node, claims),
        order,
    )
    .expect("allocate")
}

pub fn devices(node: &NodeDevices, outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Allocated(claims) => claims
            .iter()
            .flat_map(|c| c.devices.iter())
            .map(|d| {
                node.device_id(d.device)
                    .map(|(_, _, n)| n.to_owned())
                    .unwrap_or_default()
            })
            .collect(),
        Outcome::Unsatisfiable => Vec::new(),
    }
}

pub fn allocated(device: &str, shared: bool) -> AllocatedDevice {
    AllocatedDevice {
        driver: DRIVER.into(),
        pool: POOL.into(),
        device: device.into(),
        shared,
        consumed_capacity: BTreeMap::new(),
        admin_access: false,
    }
}
