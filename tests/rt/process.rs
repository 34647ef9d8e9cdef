//! `coil::process`: exit statuses and signals, piped streams both ways, large
//! outputs on stdout and stderr together, dropped children reaped (no zombie
//! in /proc), `kill_on_drop`, spawn errors, and where a `Child` may be dropped.
//! Every test runs under each driver (`driver_test!`). The SIGCHLD fallback
//! installs a process-wide handler, so its tests live in `tests/signal.rs`.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use coil::io::BufResult;
use coil::process::{Command, Stdio};

/// Longest wait for the reaper: a hang guard, never reached when things work.
const HANG: Duration = Duration::from_secs(30);

/// What /proc says about `pid`, as seen from this process.
#[derive(Debug, PartialEq)]
enum Proc {
    /// No such process, or one that is not our child (the number was reused).
    Gone,
    /// Our child, running (or sleeping, stopped).
    Running,
    /// Our child, exited and not reaped.
    Zombie,
}

fn proc_state(pid: u32) -> Proc {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Proc::Gone;
    };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next().unwrap();
    let ppid: u32 = fields.next().unwrap().parse().unwrap();
    if ppid != std::process::id() {
        Proc::Gone
    } else if state == "Z" {
        Proc::Zombie
    } else {
        Proc::Running
    }
}

/// Waits for the reaper to reap every dropped child, then checks that none of
/// `pids` is left, zombie or not.
fn assert_reaped(pids: &[u32]) {
    assert!(
        coil::process::__wait_for_orphans(HANG),
        "the reaper did not drain within {HANG:?}"
    );
    for &pid in pids {
        assert_eq!(proc_state(pid), Proc::Gone, "child {pid}");
    }
}

driver_test! {
    fn exit_codes_and_signals_are_reported(rt) {
        rt.block_on(async {
            let status = Command::shell("exit 3").status().await.unwrap();
            assert_eq!((status.code(), status.signal()), (Some(3), None));
            assert!(!status.success());
            assert!(Command::new("true").status().await.unwrap().success());

            let mut child = Command::new("sleep").arg("30").spawn().unwrap();
            let pid = child.id().expect("running: it has a pid");
            assert_eq!(child.try_wait().unwrap(), None);
            child.kill().await.unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!((status.code(), status.signal()), (None, Some(libc::SIGKILL)));
            assert!(status.to_string().contains("SIGKILL"), "{status}");
            assert_eq!(child.id(), None, "reaped: no pid any more");
            assert_eq!(child.try_wait().unwrap(), Some(status));
            assert_eq!(proc_state(pid), Proc::Gone);

            // A signal the child sends itself, seen through start_kill's sibling.
            let status = Command::shell("kill -TERM $$").status().await.unwrap();
            assert_eq!(status.signal(), Some(libc::SIGTERM));
        });
    }
}

/// `cat` with its stdin and stdout piped.
fn piped_cat() -> coil::process::Child {
    Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

driver_test! {
    fn stdin_round_trips_through_cat(rt) {
        rt.block_on(async {
            let mut cat = piped_cat();
            let (stdin, stdout) = (cat.stdin.take().unwrap(), cat.stdout.take().unwrap());
            // More than two pipefuls: writing and reading must overlap.
            let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
            let write = async {
                let BufResult(res, _) = stdin.write_all(data.clone()).await;
                res.unwrap();
                stdin.close();
                let BufResult(res, _) = stdin.write(&b"late"[..]).await;
                assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
            };
            let read = async {
                let BufResult(res, buf) = stdout.read_to_end(Vec::new()).await;
                assert_eq!(res.unwrap(), data.len());
                buf
            };
            let ((), echoed) = coil::gather!(write, read).await;
            assert!(echoed == data, "cat gave back different bytes");
            assert!(cat.wait().await.unwrap().success());

            // communicate(): stdin closed, both streams collected, then the status.
            let child = Command::shell("cat; echo err >&2; exit 5")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let out = child.wait_with_output().await.unwrap();
            assert_eq!(out.status.code(), Some(5));
            assert_eq!((&out.stdout[..], &out.stderr[..]), (&b""[..], &b"err\n"[..]));
        });
    }
}

driver_test! {
    fn a_dropped_read_loses_no_byte_and_wait_closes_stdin(rt) {
        rt.block_on(async {
            let mut cat = piped_cat();
            let stdout = cat.stdout.take().unwrap();
            // Nothing to read yet: the read is dropped in flight.
            let early = coil::time::timeout(Duration::from_millis(5), stdout.read(Vec::with_capacity(64)));
            assert!(early.await.is_err());
            let BufResult(res, _) = cat.stdin.as_ref().unwrap().write_all(&b"abc"[..]).await;
            res.unwrap();
            let BufResult(res, buf) = stdout.read(Vec::with_capacity(64)).await;
            assert_eq!(res.unwrap(), 3);
            assert_eq!(buf, b"abc");
            // `cat` ends only once its stdin closes: `wait` closes it.
            assert!(cat.wait().await.unwrap().success());
            assert!(cat.stdin.is_none());
        });
    }
}

driver_test! {
    fn args_env_and_dir_reach_the_child(rt) {
        rt.block_on(async {
            let dir = std::env::temp_dir().canonicalize().unwrap();
            let out = Command::new("sh")
                .args(["-c", "printf '%s|%s|%s|%s' \"$0\" \"$COIL_A\" \"${COIL_B-unset}\" \"$(pwd)\""])
                .arg("zero")
                .env("COIL_A", "a")
                .envs([("COIL_B", "b")])
                .env_remove("COIL_B")
                .current_dir(&dir)
                .output()
                .await
                .unwrap();
            let want = format!("zero|a|unset|{}", dir.display());
            assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
            let out = Command::shell("echo \"${HOME-none}\"")
                .env_clear()
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"none\n");
        });
    }
}

/// Bytes per stream for the large-output test: `COIL_PROCESS_BYTES`, 20 MB by
/// default (CI's matrix-deep tier runs 100 MB).
fn large_output_bytes() -> usize {
    std::env::var("COIL_PROCESS_BYTES").map_or(20_000_000, |s| s.parse().unwrap())
}

driver_test! {
    fn large_stdout_and_stderr_together_do_not_deadlock(rt) {
        let n = large_output_bytes();
        let started = Instant::now();
        let out = rt.block_on(async {
            Command::shell(format!("head -c {n} /dev/zero; head -c {n} /dev/zero >&2"))
                .output()
                .await
                .unwrap()
        });
        eprintln!("{n} bytes on stdout and on stderr in {:?}", started.elapsed());
        assert!(out.status.success());
        assert_eq!((out.stdout.len(), out.stderr.len()), (n, n));
        let zeros = [0u8; 1 << 16]; // compared a block at a time: fast in a debug build too
        for chunk in out.stdout.chunks(zeros.len()).chain(out.stderr.chunks(zeros.len())) {
            assert!(chunk == &zeros[..chunk.len()], "only zeros were written");
        }
    }
}

driver_test! {
    fn two_hundred_dropped_children_leave_no_zombie(rt) {
        let pids = rt.block_on(async {
            (0..200)
                .map(|_| {
                    let child = Command::new("true").spawn().unwrap();
                    child.id().unwrap() // dropped here, most likely still running
                })
                .collect::<Vec<u32>>()
        });
        assert_reaped(&pids);
    }
}

driver_test! {
    fn kill_on_drop_kills_and_a_plain_drop_does_not(rt) {
        rt.block_on(async {
            // Runs on after its handle is gone, until its stdin closes.
            let mut cat = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
            let (cat_pid, cat_stdin) = (cat.id().unwrap(), cat.stdin.take().unwrap());
            drop(cat);
            assert_eq!(proc_state(cat_pid), Proc::Running);
            let killed = Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
            let killed_pid = killed.id().unwrap();
            drop(killed);
            // (Before the drain: the reaper waits for every orphan, cat too.)
            drop(cat_stdin);
            assert_reaped(&[killed_pid, cat_pid]);

            // The future of `status` dropped: the child is killed too.
            let mut cmd = Command::new("sleep");
            cmd.arg("30").kill_on_drop(true);
            let timed_out = coil::time::timeout(Duration::from_millis(1), cmd.status()).await;
            assert!(timed_out.is_err());
            assert!(coil::process::__wait_for_orphans(HANG));
        });
    }
}

driver_test! {
    fn a_child_dropped_outside_any_loop_is_reaped(rt) {
        let (child, quick) = rt.block_on(async {
            let child = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
            let mut quick = Command::new("true").spawn().unwrap();
            quick.wait().await.unwrap();
            (child, quick)
        });
        let pid = child.id().unwrap();
        drop(child); // its stdin closes with it: cat ends, the reaper reaps
        drop(quick);
        assert_reaped(&[pid]);
        // And after the runtime is gone.
        let child = crate::support::run_like(rt, async {
            Command::new("cat").stdin(Stdio::piped()).spawn().unwrap()
        });
        let pid = child.id().unwrap();
        drop(child);
        assert_reaped(&[pid]);
    }
}

driver_test! {
    fn spawning_a_missing_program_names_it(rt) {
        rt.block_on(async {
            let e = Command::new("nosuchprog").spawn().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            let msg = e.to_string();
            assert!(msg.contains("'nosuchprog'") && msg.contains("os error 2"), "{msg}");
            // The OS error, with its errno, is the source.
            let os = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
            assert_eq!(os.and_then(std::io::Error::raw_os_error), Some(libc::ENOENT));
            let e = Command::new("true").current_dir("/no/such/dir").status().await.unwrap_err();
            assert!(e.to_string().contains("'/no/such/dir'"), "{e}");
        });
    }
}

#[test]
fn spawn_needs_a_kernel_loop() {
    let e = Command::new("true").spawn().unwrap_err();
    assert!(
        e.to_string().contains("inside a running coil event loop"),
        "{e}"
    );
    let e = coil::sim::Builder::new()
        .run(async { Command::new("true").status().await })
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
}

driver_test! {
    // Review: nothing of the parent's reaches a child but its three streams:
    // the loop's own fds (ring or epoll, wakers), another child's pipes and
    // pidfd are all close-on-exec. And a write to the stdin of a child that
    // exited without reading gives BrokenPipe (no SIGPIPE), under each driver.
    fn a_child_inherits_no_fd_and_a_dead_readers_pipe_is_broken(rt) {
        rt.block_on(async {
            let mut other = piped_cat();
            let _ctrl_c = coil::signal::ctrl_c();
            let out = Command::new("ls").arg("/proc/self/fd").output().await.unwrap();
            assert!(out.status.success());
            let listed = String::from_utf8(out.stdout).unwrap();
            let fds: Vec<u32> = listed.lines().map(|l| l.parse().unwrap()).collect();
            // 0-2, the directory `ls` is reading, and what this test process
            // itself inherited without close-on-exec (from whoever ran it).
            let inherited = |fd: u32| {
                // SAFETY: F_GETFD only reads the fd's flags (EBADF if closed).
                let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFD) };
                flags >= 0 && flags & libc::FD_CLOEXEC == 0
            };
            let leaked: Vec<u32> = fds.into_iter().filter(|&fd| fd > 3 && !inherited(fd)).collect();
            assert!(leaked.is_empty(), "leaked into the child: {leaked:?}");
            other.kill().await.unwrap();

            let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
            let stdin = child.stdin.take().unwrap();
            assert!(child.wait().await.unwrap().success());
            // A child another test thread forks at this moment holds the read
            // end until its exec: writes may succeed (or wait) until then.
            let err = loop {
                let BufResult(res, _) = stdin.write(&b"nobody reads"[..]).await;
                if let Err(e) = res {
                    break e;
                }
            };
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        });
    }
}

/// Review: a process forked from the one that spawned a child does not own
/// that child (it is not its parent and cannot reap it, and the number may
/// have been reused by the time it acts). Its copy of the `Child`, dropped
/// there, must not signal the process: with `kill_on_drop` it sent SIGKILL
/// to its parent's child.
#[test]
fn a_forked_process_dropping_a_child_handle_does_not_kill_it() {
    let rt = coil::Runtime::builder()
        .driver(coil::runtime::DriverChoice::Epoll)
        .build()
        .unwrap();
    let mut child = rt.block_on(async {
        Command::new("sleep")
            .arg("3600")
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    });
    // SAFETY: the forked process only drops the handle (kill, waitpid and
    // close: async-signal-safe system calls) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(child);
        // SAFETY: ends the forked process without running anything else.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the process forked above; `status` is a live int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    // A SIGKILL sent by the forked process is already pending (its exit
    // code is set when it is sent): ours, later, would not be what kills it.
    let id = child.id().unwrap() as libc::pid_t;
    // SAFETY: a plain system call; `id` is our unreaped child.
    assert_eq!(unsafe { libc::kill(id, libc::SIGTERM) }, 0);
    let status = rt.block_on(child.wait()).unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "the forked process killed our child"
    );
}
