//! Where the plugin's two Unix sockets live and what they are called, and binding them.
//!
//! | socket | default | with `--pod-uid` (rolling update) |
//! |---|---|---|
//! | registration, in the kubelet's registry dir | `<driver>-reg.sock` | `<driver>-<podUID>-reg.sock`, else `<driver>-<b64(sha256(podUID)[:8])>-reg.sock`, else `dra-<b64(sha256(driver NUL podUID)[:16])>-reg.sock`: the first whose full path fits 107 bytes |
//! | DRA service, in the plugin dir | `dra.sock` | `dra-<podUID>.sock`, else `dra-<b64(sha256(podUID)[:8])>.sock` when that path is longer than 107 bytes |
//!
//! Binding refuses any socket path longer than [`UNIX_PATH_MAX`] with a clear error instead of
//! the kernel's bare `EINVAL` (or a silently truncated name).

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use tokio::net::UnixListener;

use super::PluginError;

/// Longest AF_UNIX socket path, in bytes: `sockaddr_un.sun_path` holds 108 bytes on Linux
/// and that includes the terminating NUL (unix(7)), so a path may have at most 107.
pub const UNIX_PATH_MAX: usize = 107;

/// The two socket paths of one plugin instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPaths {
    /// Registration socket, watched by the kubelet.
    pub registration: PathBuf,
    /// DRA service socket, announced in `GetInfo`.
    pub dra: PathBuf,
}

impl SocketPaths {
    /// Paths for `driver` with sockets in `registry_dir` and `plugin_dir`; a pod UID gives
    /// the per-instance names rolling updates need.
    pub fn new(
        registry_dir: &Path,
        plugin_dir: &Path,
        driver: &str,
        pod_uid: Option<&str>,
    ) -> Self {
        match pod_uid.filter(|uid| !uid.is_empty()) {
            None => SocketPaths {
                registration: registry_dir.join(format!("{driver}-reg.sock")),
                dra: plugin_dir.join("dra.sock"),
            },
            Some(uid) => SocketPaths {
                registration: registry_dir.join(rolling_registration_name(
                    registry_dir,
                    driver,
                    uid,
                )),
                dra: plugin_dir.join(rolling_dra_name(plugin_dir, uid)),
            },
        }
    }
}

/// The registration socket name for a rolling-update instance: the first candidate whose
/// full path fits [`UNIX_PATH_MAX`], or the shortest one if none does.
fn rolling_registration_name(registry_dir: &Path, driver: &str, uid: &str) -> String {
    let uid_hash = digest(&SHA256, uid.as_bytes());
    let pair_hash = digest(&SHA256, format!("{driver}\0{uid}").as_bytes());
    let candidates = [
        format!("{driver}-{uid}-reg.sock"),
        format!("{driver}-{}-reg.sock", base64_url(&uid_hash.as_ref()[..8])),
        format!("dra-{}-reg.sock", base64_url(&pair_hash.as_ref()[..16])),
    ];
    let fits = |name: &&String| registry_dir.join(name).as_os_str().len() <= UNIX_PATH_MAX;
    candidates
        .iter()
        .find(fits)
        .unwrap_or(&candidates[2])
        .clone()
}

/// The DRA socket name for a rolling-update instance: `dra-<podUID>.sock`, or a hash of the
/// UID when that path does not fit [`UNIX_PATH_MAX`] (a long `--plugin-dir`).
fn rolling_dra_name(plugin_dir: &Path, uid: &str) -> String {
    let plain = format!("dra-{uid}.sock");
    if plugin_dir.join(&plain).as_os_str().len() <= UNIX_PATH_MAX {
        return plain;
    }
    let uid_hash = digest(&SHA256, uid.as_bytes());
    format!("dra-{}.sock", base64_url(&uid_hash.as_ref()[..8]))
}

/// Unpadded base64 with the URL-safe alphabet (RFC 4648 §5): file-name safe.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Creates `dir` if it is missing, but only its last component: its parent must exist. The
/// directories the plugin is given (kubelet registry and plugin dirs, CDI dir, state dir) sit
/// under a kubelet's or container runtime's own tree, which exists on a node; a missing parent
/// means a mistyped flag or a host path that is not mounted, and creating the whole chain (as
/// root, on the host) would hide that and scatter directories nobody reads.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "its parent {} does not exist (tessera creates only the last component: \
                 check the flag, and that the host path is mounted)",
                parent.display()
            ),
        ));
    }
    match fs::create_dir(dir) {
        // Another instance (rolling update) may have made it in between.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Bind a Unix socket at `path`: create the directory (its last component only, see
/// [`create_dir`]), remove a stale socket of a previous run (every start must), then listen.
pub fn bind(path: &Path) -> Result<UnixListener, PluginError> {
    let bind_err = |source: io::Error| PluginError::Bind {
        path: path.to_owned(),
        source,
    };
    let length = path.as_os_str().len();
    if length > UNIX_PATH_MAX {
        return Err(bind_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path is {length} bytes, longer than the {UNIX_PATH_MAX} a Unix socket allows; use a shorter directory"
            ),
        )));
    }
    if let Some(dir) = path.parent() {
        create_dir(dir).map_err(bind_err)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path).map_err(bind_err)?,
        Ok(_) => {
            // Not ours to delete: a regular file or directory at the socket path is a
            // misconfiguration, not a leftover.
            return Err(bind_err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    UnixListener::bind(path).map_err(bind_err)
}

/// Remove a socket file on shutdown; a missing one is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0b8a3f4e-6d1c-4c57-9a0e-3f1d2b9c7e11";

    #[test]
    fn create_dir_makes_the_last_component_only() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("plugin");
        create_dir(&leaf).unwrap();
        assert!(leaf.is_dir());
        // Existing: fine, twice.
        create_dir(&leaf).unwrap();
        let deep = tmp.path().join("nonexistent").join("reg");
        let err = create_dir(&deep).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nonexistent"), "{err}");
        assert!(
            !tmp.path().join("nonexistent").exists(),
            "no parent was created"
        );
    }

    #[test]
    fn default_names_without_a_pod_uid() {
        let p = SocketPaths::new(
            Path::new("/var/lib/kubelet/plugins_registry"),
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev"),
            "gpu.tessera.dev",
            None,
        );
        assert_eq!(
            p.registration,
            Path::new("/var/lib/kubelet/plugins_registry/gpu.tessera.dev-reg.sock")
        );
        assert_eq!(
            p.dra,
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev/dra.sock")
        );
    }

    #[test]
    fn rolling_update_names_carry_the_pod_uid_when_they_fit() {
        let p = SocketPaths::new(
            Path::new("/var/lib/kubelet/plugins_registry"),
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev"),
            "gpu.tessera.dev",
            Some(UID),
        );
        assert_eq!(
            p.registration,
            Path::new("/var/lib/kubelet/plugins_registry")
                .join(format!("gpu.tessera.dev-{UID}-reg.sock"))
        );
        assert_eq!(
            p.dra,
            Path::new("/var/lib/kubelet/plugins/gpu.tessera.dev").join(format!("dra-{UID}.sock"))
        );
    }

    #[test]
    fn long_paths_fall_back_to_hashed_names() {
        let dir = Path::new("/var/lib/kubelet/plugins_registry");
        let driver = "a-rather-long-driver-name.gpu.example.com";
        let second = rolling_registration_name(dir, driver, UID);
        assert!(
            second.starts_with(&format!("{driver}-")) && second.ends_with("-reg.sock"),
            "{second}"
        );
        assert_eq!(
            second.len(),
            driver.len() + 1 + 11 + 9,
            "8 bytes → 11 base64 chars: {second}"
        );
        assert!(dir.join(&second).as_os_str().len() <= UNIX_PATH_MAX);

        let deep = Path::new(
            "/var/lib/a/very/deep/kubelet/root/directory/that/eats/the/budget/plugins_registry",
        );
        let third = rolling_registration_name(deep, driver, UID);
        assert!(
            third.starts_with("dra-") && third.ends_with("-reg.sock"),
            "{third}"
        );
        assert_eq!(
            third.len(),
            4 + 22 + 9,
            "16 bytes → 22 base64 chars: {third}"
        );
        // Stable: the same instance always gets the same name.
        assert_eq!(third, rolling_registration_name(deep, driver, UID));
        assert_ne!(
            third,
            rolling_registration_name(deep, driver, "another-uid")
        );
    }

    #[test]
    fn unix_path_limit_is_107_bytes_without_the_nul() {
        assert_eq!(UNIX_PATH_MAX, 107);
        // A registry dir that leaves exactly 108 bytes for the plain name must not use it.
        let driver = "gpu.tessera.dev";
        let plain = format!("{driver}-{UID}-reg.sock");
        let dir_len = 108 - plain.len() - 1;
        let dir = PathBuf::from(format!("/{}", "d".repeat(dir_len - 1)));
        assert_eq!(dir.join(&plain).as_os_str().len(), 108);
        let name = rolling_registration_name(&dir, driver, UID);
        assert_ne!(name, plain);
        assert!(dir.join(&name).as_os_str().len() <= 107);
    }

    #[test]
    fn dra_socket_path_is_checked_and_shortened() {
        let long_dir = PathBuf::from(format!("/var/lib/kubelet/plugins/{}", "x".repeat(50)));
        let p = SocketPaths::new(Path::new("/r"), &long_dir, "gpu.tessera.dev", Some(UID));
        assert!(
            p.dra.as_os_str().len() <= UNIX_PATH_MAX,
            "{}",
            p.dra.display()
        );
        assert_ne!(p.dra, long_dir.join(format!("dra-{UID}.sock")));
        assert_eq!(
            p.dra,
            SocketPaths::new(Path::new("/r"), &long_dir, "gpu.tessera.dev", Some(UID)).dra
        );
    }

    #[tokio::test]
    async fn binding_refuses_a_path_over_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = "s".repeat(UNIX_PATH_MAX + 1 - dir.path().as_os_str().len() - 1);
        let path = dir.path().join(name);
        assert_eq!(path.as_os_str().len(), UNIX_PATH_MAX + 1);
        let err = bind(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("longer than the 107"), "{err}");
        let ok = dir
            .path()
            .join("s".repeat(UNIX_PATH_MAX - dir.path().as_os_str().len() - 1));
        assert_eq!(ok.as_os_str().len(), UNIX_PATH_MAX);
        assert!(bind(&ok).is_ok());
    }

    #[test]
    fn base64_url_matches_rfc4648_test_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_url(input.as_bytes()), want);
        }
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn binding_replaces_a_stale_socket_but_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dra.sock");
        let first = bind(&path).unwrap();
        drop(first); // the socket file stays, as after a crash
        assert!(path.exists());
        let _second = bind(&path).unwrap();
        remove(&path).unwrap();
        remove(&path).unwrap();

        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(bind(&file), Err(PluginError::Bind { .. })));
        assert!(file.exists());
    }
}
