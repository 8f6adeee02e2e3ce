//! Peak memory of the real binary's runs (wait4 on its own pid), and large test files
//! written in chunks (a child's peak counts its parent's at the fork: the test process must
//! stay small).

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::{BIN, Workspace};

/// Runs ucm (with the workspace's config) and returns its own peak resident memory in bytes;
/// asserts it exits 0.
pub fn run(ws: &Workspace, args: &[&str]) -> u64 {
    let config = ws.path("pipeline.toml");
    let mut full = vec!["-c", config.to_str().unwrap()];
    full.extend_from_slice(args);
    let (code, peak, stderr) = measured(ws, &full);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    peak
}

/// Runs ucm with `args`; returns its exit code, its peak resident memory (from wait4 on its
/// own pid) and its stderr.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std does not know about
pub fn measured(ws: &Workspace, args: &[&str]) -> (i32, u64, String) {
    let stderr = std::fs::File::create(ws.path("stderr.txt")).unwrap();
    let child = Command::new(BIN)
        .current_dir(ws.dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 reaps our own child and writes into values we own.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(libc::WIFEXITED(status), "{args:?} did not exit normally");
    let stderr = std::fs::read_to_string(ws.path("stderr.txt")).unwrap();
    (
        libc::WEXITSTATUS(status),
        usage.ru_maxrss as u64 * 1024,
        stderr,
    )
}

pub fn write_repeated(
    ws: &Workspace,
    name: &str,
    head: &str,
    chunk: &str,
    times: usize,
    tail: &str,
) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(ws.path(name)).unwrap());
    w.write_all(head.as_bytes()).unwrap();
    for _ in 0..times {
        w.write_all(chunk.as_bytes()).unwrap();
    }
    w.write_all(tail.as_bytes()).unwrap();
    w.flush().unwrap();
}
