//! PID → pod and container, from `/proc/<pid>/cgroup` of the host.
//!
//! The kubelet puts every container in a cgroup whose path names the pod UID and the runtime
//! names the container ID (kubelet `pkg/kubelet/cm/cgroup_manager_linux.go` and
//! `pod_container_manager_linux.go`, v1.36.0). Shapes seen on real nodes:
//!
//! | driver / runtime | path (after `0::` on cgroup v2, after `N:controller:` on v1) |
//! |---|---|
//! | systemd + containerd | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope` |
//! | systemd + CRI-O | `…/kubepods-pod<uid_>.slice/crio-<id>.scope` |
//! | systemd + docker | `…/kubepods-besteffort-pod<uid_>.slice/docker-<id>.scope` |
//! | cgroupfs (any runtime) | `/kubepods/burstable/pod<uid>/<id>` or `/kubepods/pod<uid>/crio-<id>` |
//!
//! The systemd driver writes the UID's dashes as underscores (a dash separates slice levels).
//! Nested prefixes (kind, `kubelet.slice/kubelet-kubepods.slice`) only add segments in front.

use std::io::{ErrorKind, Read};
use std::path::Path;

/// A cgroup file larger than this is not one the kernel wrote (a line per v1 controller).
const MAX_CGROUP_FILE_BYTES: u64 = 64 * 1024;

/// Who a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A container (or the pod's own cgroup when `container_id` is `None`).
    Pod {
        /// The pod's UID, with dashes.
        pod_uid: String,
        /// The runtime's 64-hex container ID.
        container_id: Option<String>,
    },
    /// Not under `kubepods`: a host process, a system daemon, another node agent.
    NotPod,
}

/// What reading one PID's cgroup gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The process's owner.
    Found(Owner),
    /// The process exited between the GPU read and this one (its `/proc` entry is gone).
    Gone,
    /// The file could not be read for another reason (permission: `/proc` not the host's).
    Unreadable,
}

/// Reads `/proc/<pid>/cgroup` under `host_proc` (the host's `/proc`, mounted read-only).
pub fn lookup(host_proc: &Path, pid: u32) -> Lookup {
    let path = host_proc.join(pid.to_string()).join("cgroup");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if gone(&e) => return Lookup::Gone,
        Err(_) => return Lookup::Unreadable,
    };
    let mut text = String::new();
    match file.take(MAX_CGROUP_FILE_BYTES).read_to_string(&mut text) {
        Ok(_) => Lookup::Found(parse(&text)),
        // A process that exits while its file is open reads as ESRCH.
        Err(e) if gone(&e) => Lookup::Gone,
        Err(_) => Lookup::Unreadable,
    }
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(3) // ESRCH
}

/// The owner named by the text of a `/proc/<pid>/cgroup` file (v1 or v2).
pub fn parse(text: &str) -> Owner {
    // On v1 every controller line names the same pod; the unified (`0::`) line, when there,
    // is the one the kubelet manages on v2. Take the first line that names a pod.
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(parse_path)
        .unwrap_or(Owner::NotPod)
}

fn parse_path(path: &str) -> Option<Owner> {
    if !path.contains("kubepods") {
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (at, pod_uid) = segments
        .iter()
        .enumerate()
        .find_map(|(i, s)| pod_uid(s).map(|uid| (i, uid)))?;
    let container_id = segments.get(at + 1).and_then(|s| container_id(s));
    Some(Owner::Pod {
        pod_uid,
        container_id,
    })
}

/// `pod<uid>` or `kubepods[-<qos>]-pod<uid_>.slice`.
fn pod_uid(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".slice").unwrap_or(segment);
    let at = segment.rfind("pod")?;
    let uid = segment[at + 3..].replace('_', "-");
    is_uuid(&uid).then_some(uid)
}

/// `<id>`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `crio-<id>`, `docker-<id>.scope`.
/// CRI-O's `crio-conmon-<id>` is its monitor, not the container, and gives `None`.
fn container_id(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = ["cri-containerd-", "crio-", "docker-", "containerd-"]
        .iter()
        .find_map(|p| segment.strip_prefix(p))
        .unwrap_or(segment);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
    const UID_: &str = "3f2a1b4c_5d6e_4f70_8192_a3b4c5d6e7f8";
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pod(container: bool) -> Owner {
        Owner::Pod {
            pod_uid: UID.to_owned(),
            container_id: container.then(|| ID.to_owned()),
        }
    }

    #[test]
    fn v2_systemd_containerd() {
        let text = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&text), pod(true));
    }

    #[test]
    fn v2_systemd_crio_guaranteed_and_docker() {
        let crio = format!("0::/kubepods.slice/kubepods-pod{UID_}.slice/crio-{ID}.scope\n");
        assert_eq!(parse(&crio), pod(true));
        let docker = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{ID}.scope"
        );
        assert_eq!(parse(&docker), pod(true));
    }

    #[test]
    fn v1_cgroupfs_lines() {
        let text = format!(
            "12:pids:/kubepods/burstable/pod{UID}/{ID}\n11:memory:/kubepods/burstable/pod{UID}/{ID}\n1:name=systemd:/kubepods/burstable/pod{UID}/{ID}\n"
        );
        assert_eq!(parse(&text), pod(true));
        let crio = format!("4:cpu,cpuacct:/kubepods/pod{UID}/crio-{ID}\n");
        assert_eq!(parse(&crio), pod(true));
    }

    #[test]
    fn nested_kind_prefix_and_pod_level() {
        let text = format!(
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(parse(&text), pod(true));
        let pod_level = format!("0::/kubepods.slice/kubepods-pod{UID_}.slice\n");
        assert_eq!(parse(&pod_level), pod(false));
        let conmon = format!("0::/kubepods.slice/kubepods-pod{UID_}.slice/crio-conmon-{ID}.scope");
        assert_eq!(parse(&conmon), pod(false));
    }

    #[test]
    fn host_processes_are_not_pods() {
        assert_eq!(
            parse("0::/system.slice/nvidia-persistenced.service\n"),
            Owner::NotPod
        );
        assert_eq!(
            parse("0::/user.slice/user-1000.slice/session-3.scope"),
            Owner::NotPod
        );
        assert_eq!(
            parse("0::/kubepods.slice/kubepods-burstable.slice\n"),
            Owner::NotPod
        );
        assert_eq!(parse("garbage"), Owner::NotPod);
        assert_eq!(parse(""), Owner::NotPod);
        // A slice that looks like a pod but whose UID is malformed.
        assert_eq!(parse("0::/kubepods/podnot-a-uid/x"), Owner::NotPod);
    }

    #[test]
    fn lookup_reads_a_proc_tree_and_sees_exits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("42")).unwrap();
        std::fs::write(
            dir.path().join("42/cgroup"),
            format!("0::/kubepods/pod{UID}/{ID}\n"),
        )
        .unwrap();
        assert_eq!(lookup(dir.path(), 42), Lookup::Found(pod(true)));
        assert_eq!(lookup(dir.path(), 43), Lookup::Gone);
    }
}
