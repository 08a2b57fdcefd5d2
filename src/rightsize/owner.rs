//! Which workload a pod belongs to: its owner from kube-state-metrics, or a guess from its
//! name.

use serde::Serialize;

use super::input::Owners;

/// The workload a pod belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `Job`, `ReplicaSet`, `DaemonSet`, `Pod`, … .
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Whether the owner was guessed from the pod's name (kube-state-metrics had no
    /// `kube_pod_owner` series for the pod).
    pub guessed: bool,
}

/// Characters the API server uses for generated name suffixes and pod-template hashes
/// (`alphanums` in `staging/src/k8s.io/apimachinery/pkg/util/rand/rand.go`, v1.36.0): no
/// vowels, no 0, 1 or 3.
const SAFE: &str = "bcdfghjklmnpqrstvwxz2456789";
/// Length of the random suffix `generateName` adds (`staging/src/k8s.io/apiserver/pkg/storage/
/// names/generate.go`, v1.36.0).
const SUFFIX_LEN: usize = 5;
/// A ReplicaSet's pod-template-hash is a 32-bit FNV hash, safe-encoded: at most 10 characters
/// (`pkg/controller/controller_utils.go` `ComputeHash`, v1.36.0).
const HASH_LEN: std::ops::RangeInclusive<usize> = 1..=10;

/// The workload of `pod` in `namespace`: a ReplicaSet owner is followed to its Deployment and
/// a Job to its CronJob (or other owner); a pod kube-state-metrics does not know is guessed
/// from its name.
pub fn workload_of(owners: &Owners, namespace: &str, pod: &str) -> Workload {
    let key = (namespace.to_owned(), pod.to_owned());
    if let Some((kind, name)) = owners.pods.get(&key) {
        // kube-state-metrics reports `<none>` for a pod without owner references.
        if kind.is_empty() || kind == "<none>" {
            return known(namespace, "Pod", pod);
        }
        // A Deployment's ReplicaSets and a CronJob's Jobs come and go; the workload is the
        // object above them.
        let above = match kind.as_str() {
            "ReplicaSet" => &owners.replicasets,
            "Job" => &owners.jobs,
            _ => return known(namespace, kind, name),
        };
        if let Some((top_kind, top_name)) = above
            .get(&(namespace.to_owned(), name.clone()))
            .filter(|(k, _)| !k.is_empty() && k != "<none>")
        {
            return known(namespace, top_kind, top_name);
        }
        return known(namespace, kind, name);
    }
    guess(namespace, pod)
}

fn known(namespace: &str, kind: &str, name: &str) -> Workload {
    Workload {
        namespace: namespace.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        guessed: false,
    }
}

/// The documented pod-name heuristic (`docs/recommend.md`):
/// - `<name>-<hash>-<xxxxx>` (hash 1–10 and suffix 5 safe characters): Deployment `<name>`;
/// - `<name>-<digits>`: StatefulSet `<name>`;
/// - `<name>-<xxxxx>`: Job `<name>` (a DaemonSet's pods look the same);
/// - anything else: the pod itself.
fn guess(namespace: &str, pod: &str) -> Workload {
    let guessed = |kind: &str, name: &str| Workload {
        namespace: namespace.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        guessed: true,
    };
    let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
    match parts.as_slice() {
        [suffix, hash, name]
            if is_suffix(suffix) && HASH_LEN.contains(&hash.len()) && is_safe(hash) =>
        {
            guessed("Deployment", name)
        }
        [ordinal, rest @ ..] if !rest.is_empty() && is_ordinal(ordinal) => {
            guessed("StatefulSet", &pod[..pod.len() - ordinal.len() - 1])
        }
        [suffix, rest @ ..] if !rest.is_empty() && is_suffix(suffix) => {
            guessed("Job", &pod[..pod.len() - suffix.len() - 1])
        }
        _ => guessed("Pod", pod),
    }
}

fn is_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| SAFE.contains(c))
}

fn is_suffix(s: &str) -> bool {
    s.len() == SUFFIX_LEN && is_safe(s)
}

fn is_ordinal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.chars().all(|c| c.is_ascii_digit())
}
