//! Child processes: [`Command`], [`Child`] and the child's piped streams,
//! asyncio's `create_subprocess_exec` / `create_subprocess_shell` (tokio's
//! `process`).
//!
//! This module owns spawning ([`Command`], this file), a child's handle and
//! how its exit is observed (`child.rs`), the parent's pipe ends
//! (`pipe.rs`: [`ChildStdin`], [`ChildStdout`], [`ChildStderr`]) and the
//! process-wide reaper of dropped children (`reaper.rs`). The design and its
//! reasons are in `docs/decisions/0012-processes.md`; in short:
//!
//! - **Spawning** is `std::process::Command::spawn` (fork/exec, and exec
//!   errors reported through a close-on-exec pipe, done right), called on the
//!   loop thread; it returns once the program has been exec'd. The pipe
//!   ends `Stdio::piped()` made become coil streams of the loop that spawned
//!   the child: reads and writes are ops on its driver with owned buffers,
//!   and a dropped read loses no byte, as for sockets. A spawn error names
//!   the program: `cannot run 'nosuchprog': No such file or directory (os
//!   error 2)`, of kind `NotFound`; the OS error itself (with
//!   `raw_os_error()`) is its [`source`](std::error::Error::source).
//! - **Exit** is observed through a pidfd (`pidfd_open`, Linux 5.3), which
//!   becomes readable when the child exits: [`Child::wait`] waits for that
//!   with a poll op on the loop's driver (io_uring or epoll), then reaps the
//!   child with `waitpid`. Where the kernel gives no pidfd, every SIGCHLD
//!   (through [`coil::signal`](crate::signal), which installs its handler for
//!   good) wakes the waiters, who each try `waitpid(pid, WNOHANG)`.
//! - **Ownership.** The [`Child`] owns the pid until it is reaped (after
//!   that, [`Child::id`] is `None`: the number may be reused) and its pidfd.
//!   A `Child` dropped while its process runs leaves no zombie: the process
//!   goes to the reaper, a `coil-reaper` thread running its own small loop,
//!   which reaps it when it exits; with [`Command::kill_on_drop`] it is
//!   first sent `SIGKILL`. The drop may happen inside a loop, outside any,
//!   or after the runtime is gone: it only makes system calls and sends on a
//!   channel. A child that exits while nobody waits stays a zombie only
//!   until its handle's next [`try_wait`](Child::try_wait), `wait` or drop.
//! - **Not under the simulator**: its virtual clock does not wait for a real
//!   process, so `spawn` there fails with `Unsupported`. Outside a running
//!   loop it fails too (the pipes and the pidfd belong to a loop).
//! - [`ExitStatus`], [`Output`] and [`Stdio`] are std's: a child killed by a
//!   signal has `status.signal() == Some(9)`
//!   (`std::os::unix::process::ExitStatusExt`) and prints as `signal: 9
//!   (SIGKILL)`.
//!
//! | asyncio | coil |
//! |---|---|
//! | `await create_subprocess_exec(prog, *args, stdout=PIPE)` | `Command::new(prog).args(args).stdout(Stdio::piped()).spawn()` |
//! | `await create_subprocess_shell(cmd)` | [`Command::shell(cmd)`](Command::shell) (`sh -c cmd`) |
//! | `await proc.communicate()` | [`Child::wait_with_output`], [`Command::output`] |
//! | `await proc.wait()`, `proc.returncode` | [`Child::wait`], [`Child::try_wait`] |
//! | `proc.kill()`, `proc.pid` | [`Child::start_kill`] (or `kill().await`), [`Child::id`] |
//! | `proc.stdin.write(..)`, `proc.stdout.read(n)` | [`ChildStdin::write_all`], [`ChildStdout::read`] |
//!
//! ```standalone_crate
//! use coil::io::BufResult;
//! use coil::process::{Command, Stdio};
//!
//! coil::run(async {
//!     // Everything at once: both streams read concurrently, then the status.
//!     let out = Command::new("echo").arg("hello").output().await?;
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"hello\n");
//!
//!     // Streams by hand: write to `cat`, close its stdin, read it back.
//!     let mut cat = Command::new("cat")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let stdin = cat.stdin.take().unwrap();
//!     let BufResult(res, _) = stdin.write_all(&b"meow"[..]).await;
//!     res?;
//!     drop(stdin); // cat sees end of file
//!     let stdout = cat.stdout.take().unwrap();
//!     let BufResult(res, echoed) = stdout.read_to_end(Vec::new()).await;
//!     res?;
//!     assert_eq!(echoed, b"meow");
//!     assert!(cat.wait().await?.success());
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod child;
mod pipe;
mod reaper;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;

pub use child::{__force_sigchld_fallback, Child};
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use reaper::__wait_for_orphans;
pub use std::process::{ExitStatus, Output, Stdio};

/// A process to start: program, arguments, environment, working directory
/// and standard streams; std's `process::Command` (which it wraps) with
/// async `status` and `output`, and [`Stdio::piped()`] streams that are coil
/// streams.
///
/// Each setter returns `&mut Command`, so calls chain; a `Command` can be
/// spawned any number of times.
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// Which of stdin, stdout, stderr the caller set (for `output`'s defaults).
    set: [bool; 3],
}

impl Command {
    /// A command running `program` (looked up in `PATH` if it has no `/`),
    /// with no arguments, the parent's environment and working directory,
    /// and the three standard streams inherited.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// `sh -c command`: asyncio's `create_subprocess_shell`. The shell parses
    /// `command` (quoting, pipes, redirections), so never build it from
    /// untrusted text; [`new`](Command::new) with [`args`](Command::args)
    /// passes arguments as they are.
    pub fn shell(command: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command);
        cmd
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what
    /// [`env`](Command::env) adds afterwards).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: inherited by default, [`Stdio::null()`] for
    /// [`output`](Command::output); [`Stdio::piped()`] gives
    /// [`Child::stdin`].
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set[0] = true;
        self.std.stdin(cfg);
        self
    }

    /// The child's stdout: inherited by default, piped for
    /// [`output`](Command::output); [`Stdio::piped()`] gives
    /// [`Child::stdout`].
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set[1] = true;
        self.std.stdout(cfg);
        self
    }

    /// The child's stderr: inherited by default, piped for
    /// [`output`](Command::output); [`Stdio::piped()`] gives
    /// [`Child::stderr`].
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.set[2] = true;
        self.std.stderr(cfg);
        self
    }

    /// Whether a [`Child`] dropped while its process runs sends it `SIGKILL`
    /// (default: no, the process runs on; either way it is reaped in the
    /// background). Also applies when the future of
    /// [`status`](Command::status) or [`output`](Command::output) is dropped.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// The program.
    pub fn get_program(&self) -> &OsStr {
        self.std.get_program()
    }

    /// The std command inside, to read it.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The std command inside, for what this type does not wrap
    /// (`std::os::unix::process::CommandExt`: `uid`, `process_group`,
    /// `pre_exec`, ...). A stream set there counts as set for
    /// [`output`](Command::output)'s defaults only if set here.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the child. Must be called inside a running coil loop (not the
    /// simulator): the child's pipes and pidfd belong to it.
    ///
    /// # Errors
    ///
    /// The OS error of the fork or exec, its message naming the program
    /// (kind `NotFound` for a missing program); `Unsupported` under the
    /// simulator; an error outside a running loop.
    pub fn spawn(&mut self) -> io::Result<Child> {
        on_kernel_loop()?;
        let std = self.std.spawn().map_err(|e| self.spawn_error(e))?;
        Child::new(std, self.kill_on_drop)
    }

    /// Runs the child to its end and returns its exit status. Streams are
    /// inherited unless set; piped ones are closed at once (the child reads
    /// end of file and gets `EPIPE` on writes, rather than blocking).
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        child.stdin = None;
        child.stdout = None;
        child.stderr = None;
        child.wait().await
    }

    /// Runs the child to its end and collects its stdout and stderr, read
    /// concurrently (a child filling one pipe while the parent waits on the
    /// other would never finish). Unless set, stdout and stderr are piped and
    /// stdin is [`Stdio::null()`] for this run (the command itself is left
    /// as it was); a stream set to something else than piped gives no bytes.
    pub async fn output(&mut self) -> io::Result<Output> {
        let defaults = [Stdio::null, Stdio::piped, Stdio::piped];
        let unset: Vec<usize> = (0..3).filter(|&i| !self.set[i]).collect();
        for &i in &unset {
            self.set_stream(i, defaults[i]());
        }
        let spawned = self.spawn();
        for &i in &unset {
            self.set_stream(i, Stdio::inherit());
        }
        spawned?.wait_with_output().await
    }

    /// Sets stream `i` (0 stdin, 1 stdout, 2 stderr) on the std command
    /// without marking it set.
    fn set_stream(&mut self, i: usize, cfg: Stdio) {
        match i {
            0 => self.std.stdin(cfg),
            1 => self.std.stdout(cfg),
            _ => self.std.stderr(cfg),
        };
    }

    /// `e` from spawning, its message naming the program (and the directory,
    /// if one was set: a missing one gives the same `ENOENT`).
    fn spawn_error(&self, e: io::Error) -> io::Error {
        let program = self.std.get_program().display();
        let message = match self.std.get_current_dir() {
            Some(dir) => format!("cannot run '{program}' in '{}': {e}", dir.display()),
            None => format!("cannot run '{program}': {e}"),
        };
        io::Error::new(e.kind(), SpawnError { message, os: e })
    }
}

/// A spawn error: the message names the program, and the OS error stays
/// reachable (with its errno) as the `source`.
#[derive(Debug)]
struct SpawnError {
    message: String,
    os: io::Error,
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.os)
    }
}

/// `Ok` inside a running loop on a kernel driver; the error `spawn` gives
/// elsewhere.
fn on_kernel_loop() -> io::Result<()> {
    crate::rt::with_core(|core| match core {
        None => Err(io::Error::other(
            "coil::process::Command::spawn must be called inside a running coil event loop \
             (coil::run): the child's pipes and pidfd belong to it",
        )),
        Some(core) if core.driver_kind() == coil_arch::DriverKind::Sim => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "coil::process does not run under the simulator: its virtual clock does not wait \
             for a real process (docs/decisions/0012-processes.md)",
        )),
        Some(_) => Ok(()),
    })
}

impl From<std::process::Command> for Command {
    /// Wraps a std command; its streams count as not set (see
    /// [`output`](Command::output)).
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            set: [false; 3],
        }
    }
}

impl fmt::Debug for Command {
    /// The command line, as std prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.std, f)
    }
}
