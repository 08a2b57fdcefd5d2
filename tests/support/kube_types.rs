//! Checks a manifest against the Kubernetes API types of `k8s-openapi` (feature `v1_36`):
//! the object is decoded into its typed struct and encoded again, and every non-empty field of
//! the original must come back unchanged. A misspelt or misplaced field is dropped by the
//! typed decoder, and a wrong type fails it, so either shows up here without an API server.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, resource::v1 as resource,
};

/// `Ok(true)` when the kind is known and the object matches its type, `Ok(false)` for kinds
/// this check does not know (custom resources), `Err` with every difference otherwise.
pub fn check(obj: &Value) -> Result<bool, String> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let typed = match (api_version, kind) {
        ("v1", "ServiceAccount") => roundtrip::<core::ServiceAccount>(obj),
        ("v1", "ConfigMap") => roundtrip::<core::ConfigMap>(obj),
        ("v1", "Service") => roundtrip::<core::Service>(obj),
        ("v1", "Pod") => roundtrip::<core::Pod>(obj),
        ("v1", "PersistentVolumeClaim") => roundtrip::<core::PersistentVolumeClaim>(obj),
        ("v1", "Namespace") => roundtrip::<core::Namespace>(obj),
        ("apps/v1", "DaemonSet") => roundtrip::<apps::DaemonSet>(obj),
        ("apps/v1", "Deployment") => roundtrip::<apps::Deployment>(obj),
        ("batch/v1", "Job") => roundtrip::<batch::Job>(obj),
        ("networking.k8s.io/v1", "NetworkPolicy") => roundtrip::<networking::NetworkPolicy>(obj),
        ("policy/v1", "PodDisruptionBudget") => roundtrip::<policy::PodDisruptionBudget>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => roundtrip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            roundtrip::<rbac::ClusterRoleBinding>(obj)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => roundtrip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => roundtrip::<rbac::RoleBinding>(obj),
        ("coordination.k8s.io/v1", "Lease") => roundtrip::<coordination::Lease>(obj),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => {
            roundtrip::<admission::ValidatingAdmissionPolicy>(obj)
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => {
            roundtrip::<admission::ValidatingAdmissionPolicyBinding>(obj)
        }
        ("resource.k8s.io/v1", "DeviceClass") => roundtrip::<resource::DeviceClass>(obj),
        ("resource.k8s.io/v1", "ResourceClaimTemplate") => {
            roundtrip::<resource::ResourceClaimTemplate>(obj)
        }
        _ => return Ok(false),
    }?;
    let mut problems = Vec::new();
    compare(obj, &typed, "", &mut problems);
    if problems.is_empty() {
        Ok(true)
    } else {
        Err(problems.join("; "))
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T =
        serde_json::from_value(obj.clone()).map_err(|e| format!("does not decode: {e}"))?;
    serde_json::to_value(&typed).map_err(|e| format!("does not encode: {e}"))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Every non-empty leaf of `orig` must be in `typed` with the same value.
fn compare(orig: &Value, typed: &Value, path: &str, problems: &mut Vec<String>) {
    match (orig, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                if is_empty(v) {
                    continue;
                }
                let sub = format!("{path}.{k}");
                match t.get(k) {
                    Some(tv) => compare(v, tv, &sub, problems),
                    None => problems.push(format!("{sub} is not a field of the type")),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) if o.len() == t.len() => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                compare(ov, tv, &format!("{path}[{i}]"), problems);
            }
        }
        (o, t) if o == t => {}
        // Quantities and int-or-string values may change representation, not value.
        (o, t) if scalar_text(o).is_some() && scalar_text(o) == scalar_text(t) => {}
        (o, t) => problems.push(format!("{path}: {o} came back as {t}")),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
