//! Reading `tessera allocate`'s YAML files into allocator input, one clear error per problem.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use k8s_openapi::api::resource::v1 as api;
use serde_json::Value;

use super::AllocateArgs;
use crate::allocator::{AllocatedDevice, Claim, DeviceClass, Features, Slice};
use crate::allocator_k8s::{self, Notes, SliceTarget};

/// Largest input file read (a 5,000-node slice dump is far smaller).
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Everything read.
pub struct Inputs {
    /// Node name → its slices (node-local and all-nodes ones), in file order.
    pub nodes: BTreeMap<String, Vec<Slice>>,
    /// DeviceClasses.
    pub classes: Vec<DeviceClass>,
    /// The pod's claims.
    pub claims: Vec<Claim>,
    /// Devices allocated earlier.
    pub allocated: Vec<AllocatedDevice>,
    /// What the feature level dropped.
    pub notes: Notes,
    /// The objects as read, for tessera's own fit (`own_fit`).
    pub raw: super::own_fit::RawObjects,
}

/// The objects of one file: YAML documents, `List`s flattened, nulls (empty documents)
/// skipped.
fn objects(path: &Path) -> anyhow::Result<Vec<Value>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{}: {size} bytes, more than the {MAX_FILE_BYTES} read",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not YAML: {}",
            path.display(),
            first_line(&e.to_string())
        )
    })?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "List" || kind.ends_with("List") {
            match doc.get("items") {
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                Some(Value::Null) | None => {}
                Some(_) => bail!("{}: {kind} whose items is not a list", path.display()),
            }
        } else {
            out.push(doc);
        }
    }
    Ok(out)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn kind_of(value: &Value) -> &str {
    value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("(no kind)")
}

fn typed<T: serde::de::DeserializeOwned>(value: Value, path: &Path) -> anyhow::Result<T> {
    let kind = kind_of(&value).to_owned();
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    serde_json::from_value(value)
        .map_err(|e| anyhow::anyhow!("{}: {kind} {name}: {e}", path.display()))
}

/// Reads every file named by `args`.
pub fn read(args: &AllocateArgs, features: Features) -> anyhow::Result<Inputs> {
    let mut notes = Notes::new();
    let mut raw = super::own_fit::RawObjects::default();
    let mut per_node: BTreeMap<String, Vec<Slice>> = BTreeMap::new();
    let mut all_nodes: Vec<Slice> = Vec::new();
    for path in &args.slices {
        for object in objects(path)? {
            if kind_of(&object) != "ResourceSlice" {
                bail!(
                    "{}: expected ResourceSlices, found {}",
                    path.display(),
                    kind_of(&object)
                );
            }
            let slice: api::ResourceSlice = typed(object, path)?;
            raw.slices.push(slice.clone());
            let (target, slice) = allocator_k8s::slice(&slice, features, &mut notes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            match target {
                SliceTarget::Node(node) => per_node.entry(node).or_default().push(slice),
                SliceTarget::AllNodes => all_nodes.push(slice),
            }
        }
    }
    if per_node.is_empty() {
        bail!("no node-local ResourceSlice in the --slices files");
    }
    for slices in per_node.values_mut() {
        slices.extend(all_nodes.iter().cloned());
    }
    if let Some(node) = &args.node {
        per_node.retain(|n, _| n == node);
        if per_node.is_empty() {
            bail!("no ResourceSlice for node {node}");
        }
    }

    let classes = if args.classes.is_empty() {
        builtin_classes(&args.driver_name)
    } else {
        let mut classes = Vec::new();
        for path in &args.classes {
            for object in objects(path)? {
                if kind_of(&object) != "DeviceClass" {
                    bail!(
                        "{}: expected DeviceClasses, found {}",
                        path.display(),
                        kind_of(&object)
                    );
                }
                let class: api::DeviceClass = typed(object, path)?;
                classes.push(
                    allocator_k8s::class(&class)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                );
            }
        }
        classes
    };

    let mut claims = Vec::new();
    for path in &args.claim {
        for object in objects(path)? {
            let (name, spec) = match kind_of(&object) {
                "ResourceClaim" => {
                    let c: api::ResourceClaim = typed(object, path)?;
                    raw.claims.push(c.clone());
                    (qualified(&c.metadata), c.spec)
                }
                "ResourceClaimTemplate" => {
                    let t: api::ResourceClaimTemplate = typed(object, path)?;
                    raw.claims.push(api::ResourceClaim {
                        metadata: t.metadata.clone(),
                        spec: t.spec.spec.clone(),
                        status: None,
                    });
                    (qualified(&t.metadata), t.spec.spec)
                }
                // A Pod or Deployment next to the template, as in deploy/examples.
                _ => continue,
            };
            claims.push(
                allocator_k8s::claim_from_spec(&name, &spec, features, &mut notes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            );
        }
    }
    if claims.is_empty() {
        bail!("no ResourceClaim or ResourceClaimTemplate in the --claim files");
    }

    let mut allocated = Vec::new();
    for path in &args.allocated {
        let mut list = Vec::new();
        for object in objects(path)? {
            if kind_of(&object) != "ResourceClaim" {
                bail!(
                    "{}: expected ResourceClaims, found {}",
                    path.display(),
                    kind_of(&object)
                );
            }
            list.push(typed::<api::ResourceClaim>(object, path)?);
            raw.allocated.extend(list.last().cloned());
        }
        allocated.extend(
            allocator_k8s::allocated_devices(&list)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    Ok(Inputs {
        nodes: per_node,
        classes,
        claims,
        allocated,
        notes,
        raw,
    })
}

fn qualified(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or("(unnamed)");
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// The DeviceClasses the chart installs (`deploy/helm/tessera/templates/deviceclasses.yaml`),
/// as the extender's prediction uses them.
pub fn builtin_classes(driver: &str) -> Vec<DeviceClass> {
    crate::extender::predict::chart_classes(driver)
}
