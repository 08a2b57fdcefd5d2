//! The daemon as processes: run the control binary (daemon or front end) with bounded waits,
//! read the daemon's PID file, tell a live daemon from a dead one or a recycled PID, and kill.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};

use super::{DaemonDirs, MpsError};

/// The PID file the control daemon keeps in its pipe directory.
const PID_FILE: &str = "nvidia-cuda-mps-control.pid";
/// How long `-d` may take to return, and the front end to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a started daemon may take to write its PID file.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after `quit` before it is killed: clients still
/// attached make the real daemon wait for them, and none should be by the last unprepare.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How long a killed daemon may take to disappear.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Polling step of every wait.
const POLL: Duration = Duration::from_millis(10);
/// Bytes of a command's output kept for messages.
const MAX_OUTPUT: u64 = 4096;

/// The binary as a path that exists and is executable: a name without `/` is looked up on
/// `PATH`, as a shell would.
pub(super) fn resolve(binary: &Path) -> Result<PathBuf, MpsError> {
    let missing = |reason: String| MpsError::BinaryMissing {
        binary: binary.to_owned(),
        reason,
    };
    if binary.as_os_str().is_empty() {
        return Err(missing("is empty".to_owned()));
    }
    if binary.components().count() > 1 || binary.is_absolute() {
        return executable(binary).map_err(missing);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(binary);
        if executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(missing(format!(
        "is not on PATH ({})",
        std::env::join_paths(std::env::split_paths(&path))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    )))
}

fn executable(path: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err("is not a file".to_owned());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("is not executable".to_owned());
    }
    Ok(path.to_owned())
}

fn command(binary: &Path, device: &str, dirs: &DaemonDirs) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env("CUDA_VISIBLE_DEVICES", device)
        .env("CUDA_MPS_PIPE_DIRECTORY", &dirs.pipe)
        .env("CUDA_MPS_LOG_DIRECTORY", &dirs.log);
    cmd
}

/// Remove what a dead daemon left in its pipe directory (control socket, lock, PID file),
/// keeping the directory: clients have it bind-mounted.
pub(super) fn clear_stale(pipe: &Path) -> Result<(), MpsError> {
    let io = |source| MpsError::Io {
        action: "clear",
        path: pipe.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(pipe) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io)?;
    }
    Ok(())
}

/// `nvidia-cuda-mps-control -d` for `device`; returns the daemon's PID and start time once
/// its PID file names a live process.
pub(super) fn start(
    binary: &Path,
    device: &str,
    dirs: &DaemonDirs,
) -> Result<(u32, u64), MpsError> {
    let failed = |reason: String| MpsError::Start {
        device: device.to_owned(),
        reason,
    };
    // The daemon may inherit the launcher's stdio, so no pipe of ours: a reader would wait
    // for the daemon's exit. Its complaints go to a file in its log directory instead.
    let errors_path = dirs.log.join("start.err");
    let errors = std::fs::File::create(&errors_path).map_err(|source| MpsError::Io {
        action: "create",
        path: errors_path.clone(),
        source,
    })?;
    let child = command(binary, device, dirs)
        .arg("-d")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errors)
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", binary.display())))?;
    let (ok, _) = finish(child, COMMAND_TIMEOUT).map_err(failed)?;
    if !ok {
        let mut said = String::new();
        if let Ok(file) = std::fs::File::open(&errors_path) {
            let _ = file.take(MAX_OUTPUT).read_to_string(&mut said);
        }
        return Err(failed(format!("-d failed: {}", said.trim())));
    }
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = pid_file(&dirs.pipe)
            && let Some(start_time) = identity(pid)
        {
            return Ok((pid, start_time));
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "no live PID in {} after {START_TIMEOUT:?}",
                dirs.pipe.join(PID_FILE).display()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Write `commands` to the front end's stdin, one a line; it finds the daemon through the
/// pipe directory. Returns what it printed.
pub(super) fn send(
    binary: &Path,
    device: &str,
    dirs: &DaemonDirs,
    commands: &[String],
) -> Result<String, MpsError> {
    let text = commands.join("; ");
    let failed = |reason: String| MpsError::Command {
        device: device.to_owned(),
        command: text.clone(),
        reason,
    };
    let mut child = command(binary, device, dirs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", binary.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = commands.join("\n");
        input.push('\n');
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(format!("cannot write the command: {e}")))?;
        // Dropped here: end of input, so the front end exits.
    }
    let (ok, output) = finish(child, COMMAND_TIMEOUT).map_err(failed)?;
    if ok {
        Ok(output)
    } else {
        Err(failed(output.trim().to_owned()))
    }
}

/// Wait for `child` within `timeout` (killing it past that); its success and its output
/// (stdout then stderr, bounded).
fn finish(mut child: Child, timeout: Duration) -> Result<(bool, String), String> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {timeout:?}"));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    let mut output = String::new();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let _ = stream.take(MAX_OUTPUT).read_to_string(&mut output);
    }
    Ok((status.success(), output))
}

/// This process's PID namespace, as `/proc/self/ns/pid` names it.
pub(super) fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether a daemon answers on `dirs.pipe`: the liveness test for a daemon whose PID is
/// from another PID namespace. The answer must be the number asked for, not only a zero
/// exit status, so a front end that cannot reach a daemon is never taken for one.
pub(super) fn answers(binary: &Path, device: &str, dirs: &DaemonDirs) -> bool {
    let asked = ["get_default_active_thread_percentage".to_owned()];
    send(binary, device, dirs, &asked).is_ok_and(|out| out.trim().parse::<f64>().is_ok())
}

/// Wait up to the quit grace for the daemon on `dirs.pipe` to stop answering.
pub(super) fn wait_silent(binary: &Path, device: &str, dirs: &DaemonDirs) -> bool {
    let deadline = Instant::now() + QUIT_GRACE;
    loop {
        if !answers(binary, device, dirs) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL * 10);
    }
}

/// The PID in the daemon's PID file, if there is a well-formed one.
pub(super) fn pid_file(pipe: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pipe.join(PID_FILE)).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 1)
}

/// Whether process `pid` runs with `pipe` as its `CUDA_MPS_PIPE_DIRECTORY`: a PID file
/// outliving its daemon may name a recycled PID, which must never be killed.
pub(super) fn serves(pid: u32, pipe: &Path) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let mut wanted = b"CUDA_MPS_PIPE_DIRECTORY=".to_vec();
    wanted.extend_from_slice(pipe.as_os_str().as_encoded_bytes());
    identity(pid).is_some()
        && environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_slice())
}

/// The start time (clock ticks after boot, `/proc/<pid>/stat` field 22) of process `pid`
/// if it runs (a zombie does not); reaps it if it is our zombie child.
pub(super) fn identity(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields after it start after its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    if state == "Z" || state == "X" {
        reap(pid);
        return None;
    }
    fields.nth(18)?.parse().ok() // field 22
}

/// Collect the exit status of `pid` if it is our child (a daemon whose launcher exited is
/// re-parented to the plugin when the plugin is the container's PID 1); otherwise nothing.
fn reap(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = waitpid(Some(pid), WaitOptions::NOHANG);
    }
}

/// Wait up to the quit grace for `pid` to exit, then SIGKILL it and wait again. `Err` if
/// it is still there.
pub(super) fn terminate(pid: u32) -> Result<(), ()> {
    if wait_gone(pid, QUIT_GRACE) {
        return Ok(());
    }
    if let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(raw, Signal::KILL);
    }
    if wait_gone(pid, KILL_GRACE) {
        Ok(())
    } else {
        Err(())
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if identity(pid).is_none() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
