use std::collections::BTreeMap;

use super::*;
use crate::allocator::input::{AttributeValue, Capacity};
use crate::allocator::quantity::Quantity;

fn q(text: &str) -> Quantity {
    Quantity::parse(text).unwrap_or_default()
}

fn device_maps() -> (BTreeMap<String, AttributeValue>, BTreeMap<String, Capacity>) {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "gpu.tessera.dev/type".to_owned(),
        AttributeValue::String("mig".into()),
    );
    attributes.insert(
        "gpu.tessera.dev/model".to_owned(),
        AttributeValue::String("NVIDIA H100 80GB HBM3".into()),
    );
    attributes.insert("gpu.tessera.dev/index".to_owned(), AttributeValue::Int(3));
    attributes.insert(
        "gpu.tessera.dev/driverVersion".to_owned(),
        AttributeValue::Version("550.54.15".into()),
    );
    let mut capacity = BTreeMap::new();
    capacity.insert(
        "gpu.tessera.dev/memory".to_owned(),
        Capacity {
            value: q("20Gi"),
            policy: None,
        },
    );
    (attributes, capacity)
}

fn run(expression: &str) -> Result<bool, String> {
    let (attributes, capacity) = device_maps();
    let view = DeviceView {
        driver: "gpu.tessera.dev",
        attributes: &attributes,
        capacity: &capacity,
        allow_multiple_allocations: false,
    };
    Selector::compile(expression)
        .map_err(|e| e.to_string())?
        .matches(&view)
}

#[test]
fn tessera_class_and_example_expressions_evaluate() {
    assert_eq!(
        run(
            "device.driver == 'gpu.tessera.dev' && device.attributes['gpu.tessera.dev'].type == 'mig'"
        ),
        Ok(true)
    );
    assert_eq!(
        run(
            "device.driver == 'gpu.tessera.dev' &&\n device.attributes['gpu.tessera.dev'].type == 'gpu'"
        ),
        Ok(false)
    );
    assert_eq!(
        run("device.capacity['gpu.tessera.dev'].memory.compareTo(quantity('16Gi')) >= 0"),
        Ok(true)
    );
    assert_eq!(
        run("device.capacity['gpu.tessera.dev'].memory.compareTo(quantity('20Gi')) > 0"),
        Ok(false)
    );
    assert_eq!(
        run("device.attributes['gpu.tessera.dev'].model.contains('H100')"),
        Ok(true)
    );
}

#[test]
fn operators_in_lists_maps_and_versions() {
    assert_eq!(
        run("device.attributes['gpu.tessera.dev'].index in [1, 3]"),
        Ok(true)
    );
    assert_eq!(
        run("device.attributes['gpu.tessera.dev'].index >= 4"),
        Ok(false)
    );
    assert_eq!(
        run("'profile' in device.attributes['gpu.tessera.dev']"),
        Ok(false)
    );
    assert_eq!(
        run("!(device.attributes['gpu.tessera.dev'].index == 3) || true"),
        Ok(true)
    );
    assert_eq!(
        run("device.attributes['gpu.tessera.dev'].driverVersion.isGreaterThan(semver('535.0.0'))"),
        Ok(true)
    );
    assert_eq!(run("device.allowMultipleAllocations"), Ok(false));
    assert_eq!(
        run("device.capacity['gpu.tessera.dev'].memory.isLessThan(quantity('1500Mi'))"),
        Ok(false)
    );
}

#[test]
fn missing_attribute_is_a_runtime_error_that_and_or_absorb() {
    let missing = run("device.attributes['gpu.tessera.dev'].profile == '1g.10gb'");
    assert!(
        matches!(missing, Err(ref e) if e.contains("no such key")),
        "{missing:?}"
    );
    // An unknown domain is an empty map, so the lookup inside it errors too.
    assert!(run("device.attributes['other.dev'].type == 'x'").is_err());
    assert_eq!(
        run(
            "device.attributes['gpu.tessera.dev'].type == 'gpu' && device.attributes['gpu.tessera.dev'].profile == 'x'"
        ),
        Ok(false)
    );
    assert_eq!(
        run(
            "device.attributes['gpu.tessera.dev'].profile == 'x' || device.attributes['gpu.tessera.dev'].type == 'mig'"
        ),
        Ok(true)
    );
    assert!(run("device.attributes['gpu.tessera.dev'].index == 'three'").is_err());
}

#[test]
fn selector_not_understood_instead_of_a_guess() {
    for expression in [
        "device.attributes['gpu.tessera.dev'].model.matches('H1.*')",
        "has(device.attributes['gpu.tessera.dev'].profile)",
        "device.attributes['gpu.tessera.dev'].index + 1 == 4",
        "device.capacity['gpu.tessera.dev'].memory >= 1.5",
        "device",
        "device.attributes['gpu.tessera.dev'] == 'x'",
        "device.name == 'gpu-0'",
        "'a\\'b' == 'x'",
    ] {
        let compiled = Selector::compile(expression);
        assert!(
            matches!(
                compiled,
                Err(crate::allocator::AllocatorError::SelectorNotUnderstood { .. })
            ),
            "{expression}: {compiled:?}"
        );
    }
}
