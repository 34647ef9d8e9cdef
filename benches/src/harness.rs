//! The parent: runs every measurement in a child process of this binary,
//! pinned to CPU 0, with a timeout, and collects the JSON lines.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::opts::Opts;
use crate::report::Outcome;

/// Set in a child's environment: how the parent pinned it (`taskset`, or
/// `self` when the child must call `sched_setaffinity` itself).
pub const PIN_ENV: &str = "COIL_BENCH_PIN";

/// One child's result: its JSON line (or an error line in its place).
#[derive(Debug, Clone)]
pub struct ChildResult {
    pub line: String,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How children are pinned: through `taskset -c 0` when it exists, else the
/// child pins itself with `sched_setaffinity`.
pub fn taskset() -> Option<PathBuf> {
    find_in_path("taskset")
}

/// Pins the calling thread to `cpu`; `false` if the kernel refused
/// (`std::io::Error::last_os_error` says why).
pub fn pin_thread(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, CPU_SET writes
    // inside it, and sched_setaffinity only reads `size_of::<cpu_set_t>()` bytes.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    rc == 0
}

/// Pins this process to CPU 0 (the fallback when `taskset` is missing, and
/// what a directly invoked single run does). Returns how it is pinned.
pub fn pin_self() -> &'static str {
    match std::env::var(PIN_ENV).as_deref() {
        Ok("taskset") => return "taskset",
        Ok("none") => return "none",
        _ => {}
    }
    if pin_thread(0) {
        "sched_setaffinity"
    } else {
        eprintln!(
            "coil-benches: warning: could not pin to CPU 0 ({}); running unpinned",
            std::io::Error::last_os_error()
        );
        "none"
    }
}

/// Runs `exe <args>` pinned to CPU 0, killing it after `timeout`, and returns
/// its last stdout line that looks like JSON (or an error line).
pub fn run_child(
    exe: &Path,
    args: &[String],
    peer: &str,
    workload: &str,
    timeout: Duration,
) -> ChildResult {
    let mut cmd = match taskset() {
        Some(ts) => {
            let mut c = Command::new(ts);
            c.arg("-c").arg("0").arg(exe).env(PIN_ENV, "taskset");
            c
        }
        None => {
            let mut c = Command::new(exe);
            c.env(PIN_ENV, "self");
            c
        }
    };
    cmd.args(args);
    wait_child(cmd, peer, workload, timeout)
}

/// Runs `cmd` (not pinned: e.g. a W8 child, whose loops pin themselves one
/// per CPU), killing it after `timeout`; its result as [`run_child`]'s.
pub fn wait_child(mut cmd: Command, peer: &str, workload: &str, timeout: Duration) -> ChildResult {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let err = |msg: String| ChildResult {
        line: Outcome::error(peer, workload, &msg).to_json(),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return err(format!(
                "spawn {}: {e}",
                cmd.get_program().to_string_lossy()
            ));
        }
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(format!("wait: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{'));
    match (status, line) {
        (Ok(_), Some(l)) => ChildResult {
            line: l.trim().to_string(),
        },
        (Ok(st), None) => err(format!("no JSON line from child ({st})")),
        (Err(e), _) => err(e),
    }
}

/// Runs every (workload, peer) `reps` times, interleaving peers within each
/// repetition so that slow drifts of a noisy machine hit all of them alike.
pub fn collect(
    opts: &Opts,
    workloads: &[&str],
    peers: &[&str],
) -> Result<Vec<(String, String, Vec<String>)>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let reps = opts.reps()?;
    let timeout = Duration::from_secs(opts.get_u64("timeout_s", 60)?);
    match taskset() {
        Some(p) => eprintln!("coil-benches: children pinned with {} -c 0", p.display()),
        None => eprintln!(
            "coil-benches: taskset not found; children pin themselves (sched_setaffinity)"
        ),
    }
    let mut results: Vec<(String, String, Vec<String>)> = Vec::new();
    for &w in workloads {
        for rep in 0..reps {
            for &p in peers {
                let args = opts.child_args(w, p);
                let r = run_child(&exe, &args, p, w, timeout);
                eprintln!("[{w} {}/{reps} {p}] {}", rep + 1, r.line);
                match results.iter_mut().find(|(rw, rp, _)| rw == w && rp == p) {
                    Some((_, _, lines)) => lines.push(r.line),
                    None => results.push((w.to_string(), p.to_string(), vec![r.line])),
                }
            }
        }
    }
    Ok(results)
}
