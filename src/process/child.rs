//! [`Child`]: a running child process, and how its exit is observed
//! ([`Watch`], [`wait_exit`]), for its own handle and for the reaper alike.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::process::{ExitStatus, Output};

use coil_arch::op as kop;

use super::pipe::{ChildStderr, ChildStdin, ChildStdout, collect};
use super::reaper;
use crate::net::stream::WithFd;
use crate::op::Op;
use crate::op::fd::SharedFd;
use crate::signal::{SignalKind, signal};

crate::op::unit_operation!(WithFd<kop::PollReadable>);

thread_local! {
    /// Test hook: children spawned on this thread use the SIGCHLD fallback.
    static FORCE_SIGCHLD: Cell<bool> = const { Cell::new(false) };
}

/// Makes children spawned on this thread from now on observe their exit
/// through SIGCHLD, as on a kernel without `pidfd_open` (before 5.3). For
/// tests of the fallback; not part of the API.
#[doc(hidden)]
pub fn __force_sigchld_fallback(on: bool) {
    FORCE_SIGCHLD.with(|f| f.set(on));
}

/// How a child's exit is observed (decision 0012).
pub(crate) enum Watch {
    /// Its pidfd, readable once the child has exited; waited on with a poll
    /// op on the loop's driver.
    Pidfd(SharedFd),
    /// No pidfd (`pidfd_open` failed: an old kernel, a sandbox, no fd left):
    /// every SIGCHLD delivery, through `coil::signal`.
    Sigchld,
}

impl Watch {
    /// The watch for child `pid` (not reaped yet, so the number is still
    /// its): a pidfd if the kernel gives one and the fallback is not forced.
    pub(crate) fn new(pid: u32, sigchld: bool) -> Watch {
        if sigchld || FORCE_SIGCHLD.with(Cell::get) {
            return Watch::Sigchld;
        }
        match pidfd_open(pid) {
            Ok(fd) => Watch::Pidfd(SharedFd::new(fd)),
            Err(_) => Watch::Sigchld,
        }
    }

    fn is_sigchld(&self) -> bool {
        matches!(self, Watch::Sigchld)
    }
}

/// `pidfd_open(2)` (Linux 5.3); the fd is close-on-exec.
fn pidfd_open(pid: u32) -> io::Result<RawFd> {
    // SAFETY: a plain system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as RawFd)
}

/// Waits until `child` has exited and reaps it (`waitpid`, through std's
/// `try_wait`, which keeps the status). Cancel-safe: nothing is lost if the
/// future is dropped; the next call starts over.
pub(crate) async fn wait_exit(
    child: &mut std::process::Child,
    watch: &Watch,
) -> io::Result<ExitStatus> {
    match watch {
        Watch::Pidfd(fd) => loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            Op::new(WithFd {
                op: kop::PollReadable { fd: fd.raw() },
                fd: fd.clone(),
            })
            .await?;
        },
        Watch::Sigchld => {
            // Listening before the first `try_wait`: an exit after it comes
            // with a delivery this listener sees.
            let mut sigchld = signal(SignalKind::child())?;
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
                sigchld.recv().await;
            }
        }
    }
}

/// A child process started by [`Command::spawn`](super::Command::spawn):
/// asyncio's `Process`, tokio's `process::Child`.
///
/// The handle owns the child until it is reaped. Dropping it while the child
/// runs does not wait and leaves no zombie: the child is handed to coil's
/// reaper thread, which reaps it when it exits (with
/// [`kill_on_drop`](super::Command::kill_on_drop), it is sent `SIGKILL`
/// first). This works wherever the drop happens: in a task, outside any
/// loop, after the runtime is gone. In a process forked from the one that
/// spawned the child (not its parent), a drop only closes the handle's fds:
/// it neither signals nor reaps.
///
/// Like coil's I/O objects, a `Child` belongs to the loop that spawned it
/// (`!Send`): [`wait`](Child::wait) polls the child's pidfd there.
pub struct Child {
    /// The parent's end of the child's stdin, if it was `Stdio::piped()`.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, if it was `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, if it was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    /// `None` only while it is handed to the reaper, in `drop`.
    std: Option<std::process::Child>,
    watch: Watch,
    /// Set once reaped: the pid is no longer the child's.
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The process that spawned the child, its parent: a process forked
    /// from it holds a copy of this handle but not the child.
    owner: u32,
}

impl Child {
    /// Wraps a just-spawned std child: its pipes become coil streams of the
    /// current loop, its exit is watched through a pidfd (or SIGCHLD).
    pub(crate) fn new(mut std: std::process::Child, kill_on_drop: bool) -> io::Result<Child> {
        let (stdin, stdout, stderr) = (std.stdin.take(), std.stdout.take(), std.stderr.take());
        let mut child = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            watch: Watch::new(std.id(), false),
            std: Some(std),
            status: None,
            kill_on_drop,
            owner: std::process::id(),
        };
        // On an error `child` is dropped, which kills (with kill_on_drop) and reaps.
        child.stdin = stdin.map(ChildStdin::adopt).transpose()?;
        child.stdout = stdout.map(ChildStdout::adopt).transpose()?;
        child.stderr = stderr.map(ChildStderr::adopt).transpose()?;
        Ok(child)
    }

    fn std(&mut self) -> &mut std::process::Child {
        self.std
            .as_mut()
            .expect("a Child's process is only taken by its drop")
    }

    /// The child's process id; `None` once it has been reaped (the number may
    /// then belong to another process).
    pub fn id(&self) -> Option<u32> {
        match (&self.status, &self.std) {
            (None, Some(std)) => Some(std.id()),
            _ => None,
        }
    }

    /// Waits for the child to exit and returns its status (at once if it was
    /// already collected). Cancel-safe: dropping the future loses nothing.
    ///
    /// Closes [`stdin`](Child::stdin) first, as std and tokio do: a child
    /// reading its stdin to the end would otherwise wait for the parent,
    /// which waits for it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.stdin = None;
        if let Some(status) = self.status {
            return Ok(status);
        }
        let std = self
            .std
            .as_mut()
            .expect("a Child's process is only taken by its drop");
        let status = wait_exit(std, &self.watch).await?;
        self.status = Some(status);
        Ok(status)
    }

    /// Closes stdin, reads the piped stdout and stderr to their ends, both at
    /// once (a child blocked on a full stderr pipe would never close its
    /// stdout), then waits: asyncio's `communicate()`. A stream that was not
    /// piped (or was taken out of the `Child`) gives no bytes.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        self.stdin = None;
        let (stdout, stderr) = collect(self.stdout.take(), self.stderr.take()).await?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// The exit status if the child has exited (reaping it), `None` if it
    /// still runs. Never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.std().try_wait()?;
        }
        Ok(self.status)
    }

    /// Sends `SIGKILL` to the child without waiting for it to die. `Ok` also
    /// if it has exited already.
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.std().kill()
    }

    /// Sends `SIGKILL` and waits for the child to exit (its status then
    /// says `signal: 9 (SIGKILL)`, unless it had exited already).
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // In a process forked from the owner the child is not ours: it
        // cannot be reaped here, and its number may belong to another
        // process by now. Only the fds are closed.
        if self.status.is_some() || std::process::id() != self.owner {
            return;
        }
        let Some(mut std) = self.std.take() else {
            return;
        };
        if self.kill_on_drop {
            // An error means it is gone already; the wait below tells.
            let _ = std.kill();
        }
        // Exited already: reaped here. An error (`ECHILD`: someone else reaped
        // it) leaves nothing to do.
        if let Ok(None) = std.try_wait() {
            reaper::adopt(std, self.watch.is_sigchld());
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.std.as_ref().map(std::process::Child::id))
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("pidfd", &!self.watch.is_sigchld())
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}
