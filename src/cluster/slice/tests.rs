use k8s_openapi::api::resource::v1::{DeviceAttribute, DeviceTaint};

use super::*;
use crate::cluster::testing::objects::{
    GpuFacts, SlicePlace, consume, counter_set, counter_slice, device_slice, mig_device,
    share_device, shared_gpu, whole_gpu,
};

const DRIVER: &str = "gpu.tessera.dev";

fn h100(index: u32) -> GpuFacts<'static> {
    GpuFacts {
        index,
        uuid: "GPU-1111",
        model: "NVIDIA H100 80GB HBM3",
        memory: "80Gi",
    }
}

fn place(driver: &'static str) -> SlicePlace<'static> {
    SlicePlace {
        driver,
        node: "node-a",
        pool: "node-a",
        generation: 3,
        slice_count: 2,
    }
}

fn read(slice: &ResourceSlice) -> Option<Slice> {
    read_slice(slice, DRIVER, &mut Interners::default())
}

#[test]
fn pool_and_node_come_from_the_spec() {
    let s = read(&device_slice(
        "node-a-devices-0",
        place(DRIVER),
        vec![whole_gpu(h100(0))],
    ))
    .unwrap();
    assert_eq!(&*s.name, "node-a-devices-0");
    assert_eq!(&*s.node, "node-a");
    assert_eq!(&*s.pool, "node-a");
    assert_eq!((s.generation, s.resource_slice_count), (3, 2));
    assert_eq!(s.devices.len(), 1);
    assert!(s.counter_sets.is_empty());
}

#[test]
fn other_drivers_and_slices_without_a_node_are_not_ours() {
    assert!(read(&device_slice("x", place("nic.example.com"), vec![])).is_none());
    let mut shared_pool = device_slice("x", place(DRIVER), vec![]);
    shared_pool.spec.node_name = None;
    shared_pool.spec.all_nodes = Some(true);
    assert!(read(&shared_pool).is_none());
}

#[test]
fn whole_gpu_attributes_and_memory() {
    let s = read(&device_slice("s", place(DRIVER), vec![whole_gpu(h100(2))])).unwrap();
    let d = &s.devices[0];
    assert_eq!(&*d.name, "gpu-2");
    assert_eq!(d.kind, DeviceKind::Gpu);
    assert_eq!(d.gpu, Some(2));
    assert_eq!(d.uuid.as_deref(), Some("GPU-1111"));
    assert_eq!(d.parent_uuid, None);
    assert_eq!(d.model.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(d.memory_bytes(), Some(80 << 30));
    assert!(d.mig.is_none());
    assert!(!d.multiple_allocations && !d.tainted);
}

#[test]
fn mig_profile_and_placement() {
    let mig = mig_device(h100(1), "2g.20gb", 2, 2, 2, "20Gi");
    let s = read(&device_slice("s", place(DRIVER), vec![mig])).unwrap();
    let d = &s.devices[0];
    assert_eq!(&*d.name, "gpu-1-mig-2g20gb-2");
    assert_eq!(d.kind, DeviceKind::Mig);
    assert_eq!(d.gpu, Some(1));
    assert_eq!(d.parent_uuid.as_deref(), Some("GPU-1111"));
    let mig = d.mig.as_ref().unwrap();
    assert_eq!(&*mig.profile, "2g.20gb");
    assert_eq!(mig.placement, Some(Placement::new(2, 2)));
    assert_eq!(d.capacity("computeSlices"), Some(2));
}

#[test]
fn mig_placement_size_falls_back_to_the_catalog() {
    let mut mig = mig_device(h100(0), "3g.40gb", 4, 4, 3, "40Gi");
    mig.capacity.as_mut().unwrap().remove("memorySlices");
    let s = read(&device_slice("s", place(DRIVER), vec![mig])).unwrap();
    assert_eq!(
        s.devices[0].mig.as_ref().unwrap().placement,
        Some(Placement::new(4, 4))
    );
}

#[test]
fn shared_device_has_consumable_capacity_and_counters() {
    let mut shared = shared_gpu(h100(0));
    consume(
        &mut shared,
        "gpu-0-counters",
        &[("memory-slice-0", "1"), ("compute-slices", "7")],
    );
    let s = read(&device_slice("s", place(DRIVER), vec![shared])).unwrap();
    let d = &s.devices[0];
    assert_eq!(d.kind, DeviceKind::Shared);
    assert!(d.multiple_allocations);
    assert_eq!(d.memory_bytes(), Some(80 << 30));
    assert_eq!(d.capacity("compute"), Some(100));
    assert_eq!(d.consumes.len(), 1);
    assert_eq!(&*d.consumes[0].counter_set, "gpu-0-counters");
    assert_eq!(amount(&d.consumes[0].counters, "compute-slices"), Some(7));
    assert_eq!(amount(&d.consumes[0].counters, "memory-slice-0"), Some(1));
}

#[test]
fn time_sliced_share() {
    let s = read(&device_slice(
        "s",
        place(DRIVER),
        vec![share_device(h100(3), 1, "20Gi")],
    ))
    .unwrap();
    let d = &s.devices[0];
    assert_eq!(
        (&*d.name, d.kind, d.gpu),
        ("gpu-3-share-1", DeviceKind::Share, Some(3))
    );
    assert_eq!(d.memory_bytes(), Some(20 << 30));
}

#[test]
fn counter_sets_of_a_counters_only_slice() {
    let set = counter_set(
        "gpu-0-counters",
        &[("memory-slice-0", "1"), ("compute-slices", "7")],
    );
    let s = read(&counter_slice("s", place(DRIVER), vec![set])).unwrap();
    assert!(s.devices.is_empty());
    assert_eq!(s.counter_sets.len(), 1);
    assert_eq!(&*s.counter_sets[0].name, "gpu-0-counters");
    assert_eq!(
        amount(&s.counter_sets[0].counters, "compute-slices"),
        Some(7)
    );
}

#[test]
fn qualified_attribute_and_capacity_names_are_our_domain() {
    let mut d = whole_gpu(h100(0));
    let attributes = d.attributes.take().unwrap();
    d.attributes = Some(
        attributes
            .into_iter()
            .map(|(k, v)| (format!("{DRIVER}/{k}"), v))
            .collect(),
    );
    let capacity = d.capacity.take().unwrap();
    d.capacity = Some(
        capacity
            .into_iter()
            .map(|(k, v)| (format!("{DRIVER}/{k}"), v))
            .collect(),
    );
    let s = read(&device_slice("s", place(DRIVER), vec![d])).unwrap();
    let d = &s.devices[0];
    assert_eq!(d.kind, DeviceKind::Gpu);
    assert_eq!(d.uuid.as_deref(), Some("GPU-1111"));
    assert_eq!(d.memory_bytes(), Some(80 << 30));
}

#[test]
fn kind_and_index_fall_back_to_the_device_name() {
    let mut d = whole_gpu(h100(5));
    d.attributes = None;
    d.name = "gpu-5-shared".into();
    let mut foreign = whole_gpu(h100(0));
    foreign.attributes = Some(BTreeMap::from([(
        "type".to_owned(),
        DeviceAttribute {
            string: Some("nic".into()),
            ..DeviceAttribute::default()
        },
    )]));
    foreign.name = "eth0".into();
    let s = read(&device_slice("s", place(DRIVER), vec![d, foreign])).unwrap();
    assert_eq!(
        (s.devices[0].kind, s.devices[0].gpu),
        (DeviceKind::Shared, Some(5))
    );
    assert_eq!(
        (s.devices[1].kind, s.devices[1].gpu),
        (DeviceKind::Other, None)
    );
}

#[test]
fn scheduling_taints_mark_a_device() {
    let taint = |effect: &str| DeviceTaint {
        key: "gpu.tessera.dev/xid".into(),
        value: Some("79".into()),
        effect: effect.into(),
        time_added: None,
    };
    let mut bad = whole_gpu(h100(0));
    bad.taints = Some(vec![taint("NoSchedule")]);
    let mut noted = whole_gpu(h100(1));
    noted.taints = Some(vec![taint("None")]);
    let s = read(&device_slice("s", place(DRIVER), vec![bad, noted])).unwrap();
    assert!(s.devices[0].tainted);
    assert!(!s.devices[1].tainted);
}

#[test]
fn bad_quantities_are_skipped_and_the_rest_kept() {
    let mut d = whole_gpu(h100(0));
    d.capacity.as_mut().unwrap().insert(
        "compute".into(),
        k8s_openapi::api::resource::v1::DeviceCapacity {
            value: k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()),
            request_policy: None,
        },
    );
    let s = read(&device_slice("s", place(DRIVER), vec![d])).unwrap();
    assert_eq!(s.devices[0].memory_bytes(), Some(80 << 30));
    assert_eq!(s.devices[0].capacity("compute"), None);
}

#[test]
fn device_count_is_bounded() {
    let devices = (0..MAX_DEVICES_PER_SLICE as u32 + 10)
        .map(|i| whole_gpu(h100(i)))
        .collect();
    let s = read(&device_slice("s", place(DRIVER), devices)).unwrap();
    assert_eq!(s.devices.len(), MAX_DEVICES_PER_SLICE);
}

#[test]
fn repeated_values_share_memory() {
    let mut interners = Interners::default();
    let a = read_slice(
        &device_slice("a", place(DRIVER), vec![whole_gpu(h100(0))]),
        DRIVER,
        &mut interners,
    )
    .unwrap();
    let b = read_slice(
        &device_slice("b", place(DRIVER), vec![whole_gpu(h100(0))]),
        DRIVER,
        &mut interners,
    )
    .unwrap();
    assert!(
        Arc::ptr_eq(&a.devices[0].spec, &b.devices[0].spec),
        "one spec for equal devices"
    );
    assert!(Arc::ptr_eq(&a.devices[0].name, &b.devices[0].name));
    assert!(Arc::ptr_eq(&a.devices[0].capacity, &b.devices[0].capacity));
    assert!(Arc::ptr_eq(&a.devices[0].consumes, &b.devices[0].consumes));
}

#[test]
fn request_policies_are_read_with_the_capacity() {
    let s = read(&device_slice(
        "node-a-devices-0",
        place(DRIVER),
        vec![shared_gpu(h100(0))],
    ))
    .unwrap();
    let d = &s.devices[0];
    let memory = d.policy("memory").unwrap();
    assert_eq!(memory.default, Some(1 << 30));
    assert_eq!(
        (memory.min, memory.step, memory.max),
        (Some(1 << 30), Some(1 << 30), None)
    );
    assert!(d.policy("compute").is_some());
    assert!(d.policy("memorySlices").is_none());
    assert!(whole_policies_are_empty());
}

fn whole_policies_are_empty() -> bool {
    let s = read(&device_slice("n", place(DRIVER), vec![whole_gpu(h100(0))])).unwrap();
    s.devices[0].policies.is_empty()
}

fn range(default: Option<u64>, min: u64, step: Option<u64>, max: Option<u64>) -> RequestPolicy {
    RequestPolicy {
        name: Arc::from("memory"),
        default,
        min: Some(min),
        max,
        step,
        valid_values: Box::default(),
    }
}

const GI: u64 = 1 << 30;
const MI: u64 = 1 << 20;

#[test]
fn an_unnamed_capacity_consumes_the_default_or_everything() {
    let p = range(Some(79 * GI), GI, Some(GI), Some(79 * GI));
    assert_eq!(
        RequestPolicy::consumed(Some(&p), None, 80 * GI),
        Some(79 * GI)
    );
    let no_default = range(None, GI, Some(GI), None);
    assert_eq!(
        RequestPolicy::consumed(Some(&no_default), None, 80 * GI),
        Some(80 * GI)
    );
    assert_eq!(
        RequestPolicy::consumed(None, None, 80 * GI),
        Some(80 * GI),
        "no policy"
    );
    assert_eq!(
        RequestPolicy::consumed(None, Some(1500 * MI), 80 * GI),
        Some(1500 * MI)
    );
}

#[test]
fn requests_round_up_to_min_then_to_whole_steps_and_stop_at_max() {
    let p = range(Some(79 * GI), GI, Some(GI), Some(79 * GI));
    assert_eq!(
        RequestPolicy::consumed(Some(&p), Some(1500 * MI), 80 * GI),
        Some(2 * GI)
    );
    assert_eq!(
        RequestPolicy::consumed(Some(&p), Some(1), 80 * GI),
        Some(GI),
        "min"
    );
    assert_eq!(
        RequestPolicy::consumed(Some(&p), Some(3 * GI), 80 * GI),
        Some(3 * GI)
    );
    assert_eq!(
        RequestPolicy::consumed(Some(&p), Some(79 * GI + 1), 80 * GI),
        None,
        "past max"
    );
    let stepless = range(None, GI, None, None);
    assert_eq!(
        RequestPolicy::consumed(Some(&stepless), Some(1500 * MI), 80 * GI),
        Some(1500 * MI)
    );
    // Steps count from min, not from zero.
    let offset = range(None, 3, Some(5), None);
    assert_eq!(
        RequestPolicy::consumed(Some(&offset), Some(4), 100),
        Some(8)
    );
}

#[test]
fn requests_round_up_to_the_next_valid_value() {
    let p = RequestPolicy {
        name: Arc::from("compute"),
        default: Some(25),
        min: None,
        max: None,
        step: None,
        valid_values: vec![25, 50, 100].into(),
    };
    assert_eq!(RequestPolicy::consumed(Some(&p), Some(30), 100), Some(50));
    assert_eq!(RequestPolicy::consumed(Some(&p), Some(50), 100), Some(50));
    assert_eq!(RequestPolicy::consumed(Some(&p), Some(101), 100), None);
    assert_eq!(RequestPolicy::consumed(Some(&p), None, 100), Some(25));
}
