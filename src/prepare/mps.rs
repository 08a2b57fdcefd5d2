//! MPS control daemons the plugin runs: one per GPU or MIG instance that has at least one
//! prepared MPS share, started by the first share's prepare, stopped by the last share's
//! unprepare, adopted or restarted after a plugin restart, restarted when it dies.
//!
//! ```text
//! <mps-root>/shm                   the daemons' /dev/shm (the chart mounts it there in the
//!                                  plugin container), bind-mounted at /dev/shm in clients
//! <mps-root>/<device UUID>/pipe    CUDA_MPS_PIPE_DIRECTORY: control socket, PID file;
//!                                  bind-mounted at /tmp/nvidia-mps in every client
//! <mps-root>/<device UUID>/log     CUDA_MPS_LOG_DIRECTORY: control.log, server.log
//! <state-dir>/mps-daemons.json     which daemon runs where (PID + start time), for whom
//! ```
//!
//! The facts of the control protocol come from NVIDIA's DRA driver (`NVIDIA/k8s-dra-driver-gpu`,
//! `templates/mps-control-daemon.tmpl.yaml` and `cmd/gpu-kubelet-plugin/sharing.go`, May
//! 2026): the daemon starts with `nvidia-cuda-mps-control -d` and `CUDA_VISIBLE_DEVICES` set to
//! the GPU or MIG UUID it serves; settings and `quit` are lines written to the same binary's
//! stdin (its front end, which finds the daemon through `CUDA_MPS_PIPE_DIRECTORY`); clients
//! get the pipe directory and the daemon's `/dev/shm` bind-mounted, and
//! `CUDA_MPS_PIPE_DIRECTORY` set to the mount point. The daemon keeps its PID in
//! `nvidia-cuda-mps-control.pid` in the pipe directory.
//!
//! A daemon is identified by PID *and* start time (`/proc/<pid>/stat` field 22), so a
//! recycled PID is never taken for the daemon. The pipe directory of a device is never
//! removed while a client holds it: clients bind-mount the directory itself, so a restarted
//! daemon must come back in the same directory, not a new one of the same name.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::device::MpsLimits;

mod process;
mod record;

pub use record::{DaemonRecord, DaemonsData, MPS_RECORD_FILE};

/// The control binary when `--mps-control-binary` is not given: found on `PATH`, where the
/// NVIDIA container runtime puts it for a container asking for the `compute` capability.
pub const DEFAULT_CONTROL_BINARY: &str = "nvidia-cuda-mps-control";
/// Where clients see their daemon's pipe directory (NVIDIA's driver uses the same path).
pub const CLIENT_PIPE_DIR: &str = "/tmp/nvidia-mps";
/// Where clients see the daemons' shared memory.
pub const CLIENT_SHM_DIR: &str = "/dev/shm";
/// The name of the node-wide shared-memory directory under the MPS root.
const SHM_DIR: &str = "shm";
/// A device UUID longer than this is not one NVML gave (`MIG-` + 36 is 40 characters).
const MAX_DEVICE_ID: usize = 64;

/// Why an MPS control daemon could not be started, configured or stopped.
#[derive(Debug, Error)]
pub enum MpsError {
    /// The control binary is not there: MPS limits could not be enforced, so the claim is
    /// refused rather than run without them.
    #[error(
        "MPS control binary {binary} {reason}: MPS limits cannot be enforced on this node, so the claim is refused; install the NVIDIA driver's nvidia-cuda-mps-control or point --mps-control-binary (Helm: plugin.mps.controlBinary) at it"
    )]
    BinaryMissing {
        /// The configured binary.
        binary: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A directory or file of the daemons could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The device UUID cannot name a directory.
    #[error("device ID {0:?} cannot name an MPS directory")]
    BadDevice(String),
    /// `nvidia-cuda-mps-control -d` failed, or the daemon it started did not come up.
    #[error("MPS control daemon for {device} did not start: {reason}")]
    Start {
        /// The GPU or MIG UUID.
        device: String,
        /// What happened.
        reason: String,
    },
    /// A control command failed.
    #[error("MPS control command `{command}` for {device} failed: {reason}")]
    Command {
        /// The GPU or MIG UUID.
        device: String,
        /// The command line.
        command: String,
        /// What happened.
        reason: String,
    },
    /// The daemon outlived `quit` and SIGKILL.
    #[error("MPS control daemon for {device} (pid {pid}) is still running after quit and SIGKILL")]
    Stop {
        /// The GPU or MIG UUID.
        device: String,
        /// Its PID.
        pid: u32,
    },
    /// The daemon record is unreadable.
    #[error(
        "MPS daemon record {path} is corrupt ({reason}); recovery rebuilds it from the pipe directories"
    )]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where the daemons live and what runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpsConfig {
    /// Root of the per-device pipe and log directories and of the shared-memory directory;
    /// the same path on the host and in the plugin container (clients mount from it).
    pub root: PathBuf,
    /// `nvidia-cuda-mps-control` (a path, or a name looked up on `PATH`).
    pub control_binary: PathBuf,
}

/// One device's daemon directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonDirs {
    /// `CUDA_MPS_PIPE_DIRECTORY`.
    pub pipe: PathBuf,
    /// `CUDA_MPS_LOG_DIRECTORY`.
    pub log: PathBuf,
}

/// The daemons of this node: starting, configuring, checking and stopping them, and their
/// record. Every method blocks (processes, files): call from a blocking thread, under the
/// state lock, so two plugin instances never start two daemons for one device.
#[derive(Debug, Clone)]
pub struct MpsDaemons {
    config: MpsConfig,
    record: PathBuf,
}

impl MpsDaemons {
    /// Daemons under `config.root`, recorded in `state_dir`.
    pub fn new(config: MpsConfig, state_dir: &Path) -> Self {
        MpsDaemons {
            config,
            record: state_dir.join(MPS_RECORD_FILE),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MpsConfig {
        &self.config
    }

    /// The directories of `device`'s daemon.
    pub fn dirs(&self, device: &str) -> Result<DaemonDirs, MpsError> {
        let dir = self.device_dir(device)?;
        Ok(DaemonDirs {
            pipe: dir.join("pipe"),
            log: dir.join("log"),
        })
    }

    /// The node-wide shared-memory directory of the daemons.
    pub fn shm_dir(&self) -> PathBuf {
        self.config.root.join(SHM_DIR)
    }

    fn device_dir(&self, device: &str) -> Result<PathBuf, MpsError> {
        let ok = !device.is_empty()
            && device.len() <= MAX_DEVICE_ID
            && device != SHM_DIR
            && device
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !device.starts_with('-');
        if !ok {
            return Err(MpsError::BadDevice(device.to_owned()));
        }
        Ok(self.config.root.join(device))
    }

    /// The control binary, resolved; an error naming the path and the flag if it is not
    /// there or not executable.
    pub fn check_binary(&self) -> Result<PathBuf, MpsError> {
        process::resolve(&self.config.control_binary)
    }

    /// Read the record; a missing file is no daemons.
    pub fn load(&self) -> Result<DaemonsData, MpsError> {
        record::load(&self.record)
    }

    /// Replace the record, durably.
    pub fn save(&self, data: &DaemonsData) -> Result<(), MpsError> {
        record::save(&self.record, data)
    }

    /// Whether the recorded daemon is the process running now (same PID, same start time,
    /// not a zombie); for a daemon another plugin container started (another PID
    /// namespace), whether it answers on its pipe directory.
    pub fn alive(&self, daemon: &DaemonRecord) -> bool {
        if self.foreign(daemon) {
            let dirs = DaemonDirs {
                pipe: daemon.pipe_dir.clone(),
                log: daemon.log_dir.clone(),
            };
            return self
                .check_binary()
                .is_ok_and(|binary| process::answers(&binary, &daemon.device, &dirs));
        }
        process::identity(daemon.pid).is_some_and(|start| start == daemon.start_time)
    }

    /// Whether `daemon`'s PID is from another PID namespace than this process's.
    fn foreign(&self, daemon: &DaemonRecord) -> bool {
        daemon
            .pid_namespace
            .as_ref()
            .is_some_and(|ns| Some(ns) != process::pid_namespace().as_ref())
    }

    /// The daemon running for `device` that no record names (a lost or corrupt record), as
    /// its PID file and the process's environment show it; recorded afresh by the caller.
    pub fn find_unrecorded(&self, device: &str) -> Result<Option<DaemonRecord>, MpsError> {
        let dirs = self.dirs(device)?;
        let Some(pid) = process::pid_file(&dirs.pipe).filter(|p| process::serves(*p, &dirs.pipe))
        else {
            return Ok(None);
        };
        Ok(process::identity(pid)
            .map(|start_time| DaemonRecord::new(device, pid, start_time, dirs)))
    }

    /// Start `device`'s daemon in its directories (created if missing; stale files of a
    /// dead daemon removed, the directories themselves kept for the clients' mounts).
    /// Returns its record, with no clients and no defaults applied yet.
    pub fn start(&self, device: &str) -> Result<DaemonRecord, MpsError> {
        let binary = self.check_binary()?;
        let dirs = self.dirs(device)?;
        for dir in [&dirs.pipe, &dirs.log, &self.shm_dir()] {
            std::fs::create_dir_all(dir).map_err(|source| MpsError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        }
        process::clear_stale(&dirs.pipe)?;
        let (pid, start_time) = process::start(&binary, device, &dirs)?;
        Ok(DaemonRecord::new(device, pid, start_time, dirs))
    }

    /// Make `daemon` serve exactly `clients` (claim UID → its limits), and set the daemon's
    /// defaults to the largest limits among them when they changed (see [`defaults_for`]).
    pub fn configure(
        &self,
        daemon: &mut DaemonRecord,
        clients: &BTreeMap<String, MpsLimits>,
    ) -> Result<(), MpsError> {
        daemon.clients = clients.keys().cloned().collect();
        let wanted = defaults_for(clients.values());
        if daemon.defaults == Some(wanted) {
            return Ok(());
        }
        let binary = self.check_binary()?;
        let dirs = DaemonDirs {
            pipe: daemon.pipe_dir.clone(),
            log: daemon.log_dir.clone(),
        };
        let mut commands = vec![format!(
            "set_default_active_thread_percentage {}",
            wanted.active_thread_percentage.unwrap_or(100)
        )];
        if let Some(bytes) = wanted.pinned_memory_limit_bytes {
            // Device 0: the daemon sees only its own device (CUDA_VISIBLE_DEVICES).
            commands.push(format!(
                "set_default_device_pinned_mem_limit 0 {}M",
                (bytes >> 20).max(1)
            ));
        }
        process::send(&binary, &daemon.device, &dirs, &commands)?;
        daemon.defaults = Some(wanted);
        Ok(())
    }

    /// Stop `device`'s daemon: `quit` through the front end, a bounded wait, then SIGKILL.
    /// `daemon` is its record if there is one; without one, the PID file in the pipe
    /// directory names it (a crash between start and record). The device's directories are
    /// removed afterwards: no client holds them any more.
    pub fn stop(&self, device: &str, daemon: Option<&DaemonRecord>) -> Result<(), MpsError> {
        let dirs = self.dirs(device)?;
        if let Some(d) = daemon
            && self.foreign(d)
        {
            // Its PID means nothing here: `quit`, and wait for it to stop answering.
            if self.alive(d) {
                let binary = self.check_binary()?;
                let _ = process::send(&binary, device, &dirs, &["quit".to_owned()]);
                if !process::wait_silent(&binary, device, &dirs) {
                    return Err(MpsError::Stop {
                        device: device.to_owned(),
                        pid: d.pid,
                    });
                }
            }
            return self.remove_dirs(device);
        }
        let target = match daemon {
            Some(d) if self.alive(d) => Some(d.pid),
            _ => process::pid_file(&dirs.pipe).filter(|pid| process::serves(*pid, &dirs.pipe)),
        };
        if let Some(pid) = target {
            // The front end may be gone (a binary removed since); SIGKILL still stops it.
            let quit = self
                .check_binary()
                .and_then(|binary| process::send(&binary, device, &dirs, &["quit".to_owned()]));
            if let Err(error) = quit {
                tracing::warn!(%device, %error, "MPS quit failed; killing the daemon");
            }
            process::terminate(pid).map_err(|()| MpsError::Stop {
                device: device.to_owned(),
                pid,
            })?;
        }
        self.remove_dirs(device)
    }

    fn remove_dirs(&self, device: &str) -> Result<(), MpsError> {
        let dir = self.device_dir(device)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(MpsError::Io {
                action: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// Device directories under the root (daemons possibly running) that `known` does not
    /// name: what a crash between start and record, or a lost record, leaves behind.
    pub fn unknown_dirs(&self, known: &BTreeSet<String>) -> Result<Vec<String>, MpsError> {
        let entries = match std::fs::read_dir(&self.config.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(MpsError::Io {
                    action: "list",
                    path: self.config.root.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if entry.path().is_dir() && self.device_dir(&name).is_ok() && !known.contains(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The defaults a daemon gets: the largest limits among its clients, and none where a
/// client has none. Clients carry their own limits in their environment; the defaults only
/// bind a process in a client container that started without that environment, and must
/// never cap a client below what its claim was given.
pub fn defaults_for<'a>(clients: impl Iterator<Item = &'a MpsLimits>) -> MpsLimits {
    let mut out: Option<MpsLimits> = None;
    for c in clients {
        out = Some(match out {
            None => *c,
            Some(o) => MpsLimits {
                active_thread_percentage: o
                    .active_thread_percentage
                    .zip(c.active_thread_percentage)
                    .map(|(a, b)| a.max(b)),
                pinned_memory_limit_bytes: o
                    .pinned_memory_limit_bytes
                    .zip(c.pinned_memory_limit_bytes)
                    .map(|(a, b)| a.max(b)),
            },
        });
    }
    out.unwrap_or_default()
}

impl DaemonRecord {
    /// The record of a daemon this plugin's PID namespace sees running as `pid` (started at
    /// `start_time`) in `dirs`, with no clients and no defaults applied yet.
    fn new(device: &str, pid: u32, start_time: u64, dirs: DaemonDirs) -> Self {
        DaemonRecord {
            device: device.to_owned(),
            pid,
            start_time,
            pid_namespace: process::pid_namespace(),
            pipe_dir: dirs.pipe,
            log_dir: dirs.log,
            clients: BTreeSet::new(),
            defaults: None,
            restarts: 0,
        }
    }
}

#[cfg(test)]
mod tests;
