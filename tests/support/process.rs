//! Running a child process with a wall-clock limit, keeping at most so many
//! bytes of its output. Shared by `tests/common` (the conformance and trace
//! tests) and `tests/support/loopgen.rs` (the JIT differential fuzzer, also
//! built into `examples/jit_fuzz.rs`), which include this file with
//! `#[path = ...] mod process;` and each turn the result into their own
//! status type.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    /// The process exited with this code.
    Exited(i32),
    /// A signal we did not send ended it.
    Signaled(i32),
    /// It ran past the time limit and was killed.
    TimedOut,
    /// Waiting for it failed; it may still be running.
    WaitFailed(std::io::Error),
}

/// What a run printed and how it ended.
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Some output was dropped (past the cap).
    pub truncated: bool,
    pub ended: Ended,
}

/// Runs `cmd` with no stdin, killing it after `timeout`, and keeps at most
/// `cap` bytes of each of its output streams (the rest is read and dropped,
/// so a chatty child never blocks on a full pipe). Fails only when the
/// process cannot be started.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration, cap: usize) -> std::io::Result<Captured> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let out = read_capped(child.stdout.take().expect("stdout is piped"), cap);
    let err = read_capped(child.stderr.take().expect("stderr is piped"), cap);
    let ended = wait_with_timeout(&mut child, timeout);
    let (stdout, t1) = out.join().unwrap_or_default();
    let (stderr, t2) = err.join().unwrap_or_default();
    Ok(Captured { stdout, stderr, truncated: t1 || t2, ended })
}

fn ended(status: ExitStatus) -> Ended {
    if let Some(code) = status.code() {
        return Ended::Exited(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Ended::Signaled(sig);
        }
    }
    // Neither a code nor a signal: not something a finished process reports.
    Ended::Signaled(-1)
}

fn read_capped(mut r: impl Read + Send + 'static, cap: usize) -> thread::JoinHandle<(Vec<u8>, bool)> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut dropped = false;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    dropped |= n > room;
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        (kept, dropped)
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Ended {
    let start = Instant::now();
    // Short runs are the common case: poll often at first, then back off.
    let mut nap = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return ended(status),
            Ok(None) => {}
            Err(e) => return Ended::WaitFailed(e),
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ended::TimedOut;
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    }
}
