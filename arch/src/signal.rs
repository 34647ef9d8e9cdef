//! Process-wide signal handling: coil's signal handler, the flags it sets and the
//! eventfd it writes, which one thread of the process reads ([`Receiver::wait`]).
//!
//! This module owns the kernel side of `coil::signal` (the choice is explained in
//! `docs/decisions/0011-signals.md`):
//!
//! - [`install`] installs `on_signal` for one signal number with `sigaction(2)`, once;
//!   it stays installed for the life of the process (the default disposition is never
//!   restored).
//! - The handler does only async-signal-safe things: an atomic store into
//!   `PENDING[signo]` and one `write(2)` of 1 to the process's eventfd, keeping the
//!   interrupted code's `errno`.
//! - [`Receiver::wait`] blocks until the eventfd was written and [`take`] reads and
//!   clears one signal's flag. The order (the handler stores the flag before it writes;
//!   the reader empties the eventfd before it takes the flags) means a delivery is never
//!   missed: its flag is seen by the read that consumed its write or by an earlier one.
//!
//! The handler runs on whichever thread the kernel picks (a loop thread, a blocking-pool
//! thread, a user thread); none of them has to block anything. A signal blocked in every
//! thread by the program itself never reaches the handler.
//!
//! **Fork.** The eventfd belongs to the process that made it: a forked child that asks
//! for the [`receiver`] gets a new eventfd (the parent's stays open in the child,
//! unused: closing it could race with a handler still writing to its number).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::sys::{Blocking, EventFd, syscall};

/// One more than the largest signal number Linux has (`_NSIG`).
pub const NSIG: usize = 65;

/// `PENDING[signo]`: the handler ran for `signo` since the last [`take`].
static PENDING: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];
/// The raw fd of the current process's eventfd, `-1` before the first [`receiver`].
/// An atomic, because the handler reads it.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The current process's receiver and the pid it was made in.
///
/// Fork: taken only when a signal's handler is installed (a listener is
/// made), never by a spawn, an op, a timer or a runtime's construction. A
/// child forked while another thread held it would wait for it for good at
/// its first listener, before the pid check; not handled.
static STATE: Mutex<Option<(u32, &'static Receiver)>> = Mutex::new(None);

/// The read end of the signal handler's eventfd; one per process, never freed.
#[derive(Debug)]
pub struct Receiver {
    eventfd: EventFd,
}

impl Receiver {
    /// Blocks the calling thread until the handler has run since the last `wait`
    /// returned (or since the receiver was made), then returns; the caller then asks
    /// [`take`] which signals came. May return with no flag set (a delivery whose flag
    /// an earlier `take` already saw).
    ///
    /// Meant for one thread of the process: two threads waiting would share the
    /// wake-ups between them.
    pub fn wait(&self) -> io::Result<()> {
        loop {
            // A blocking eventfd: the read waits for a non-zero counter and resets it.
            match self.eventfd.drain() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// The process's receiver, made on the first call (and again in a forked child).
pub fn receiver() -> io::Result<&'static Receiver> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((owner, rx)) = *state
        && owner == pid
    {
        return Ok(rx);
    }
    // A forked child (or a first receiver): a flag set before this process had a
    // receiver of its own is a delivery nobody listened for (in a child, the
    // handler inherited from the parent set it and woke the parent's eventfd).
    for flag in &PENDING {
        flag.store(false, Ordering::SeqCst);
    }
    // Leaked: the handler may write to its fd at any time from now on.
    let rx: &'static Receiver = Box::leak(Box::new(Receiver {
        eventfd: EventFd::new(Blocking::Yes)?,
    }));
    WAKE_FD.store(rx.eventfd.as_raw_fd(), Ordering::SeqCst);
    *state = Some((pid, rx));
    Ok(rx)
}

/// Whether coil may handle `signo`: a standard signal other than those that cannot be
/// caught (`SIGKILL`, `SIGSTOP`) or that mean the program itself faulted (`SIGSEGV`,
/// `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`, `SIGSYS`), or a real-time signal from
/// `SIGRTMIN()` to `SIGRTMAX()` (the C library keeps the ones below `SIGRTMIN()`).
pub fn is_allowed(signo: i32) -> bool {
    const FORBIDDEN: [i32; 8] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];
    (1..32).contains(&signo) && !FORBIDDEN.contains(&signo)
        || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo) && (signo as usize) < NSIG
}

/// Makes `on_signal` the handler of `signo` (unless the kernel says it is already:
/// a handler someone else installed since is replaced again) and makes
/// the [`receiver`] if there is none yet. From then on a delivery of `signo` no longer
/// has its default effect (a `SIGINT` does not end the process): it sets the flag and
/// writes the eventfd, whether or not anyone is listening.
///
/// `EINVAL` for a signal that [`is_allowed`] rejects.
pub fn install(signo: i32) -> io::Result<()> {
    if !is_allowed(signo) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    receiver()?;
    let _state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    // Ask the kernel, not a flag of ours: the program (or another crate) may have
    // replaced coil's handler since, with `signal(sig, SIG_DFL)` or its own handler,
    // and a listener made now must still hear the signal.
    // SAFETY: all-zero is a valid sigaction for the kernel to overwrite.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `current`, a live
    // local.
    syscall!(unsafe { libc::sigaction(signo, std::ptr::null(), &raw mut current) })?;
    if current.sa_sigaction == on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t {
        return Ok(());
    }
    // SAFETY: sigaction is plain data; all-zero is a valid value (no flags, empty
    // mask) that the fields below complete.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // Restart interrupted system calls, so that coil's handler does not make other
    // threads' blocking calls fail with EINTR.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a live sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and lives across the call; a null old
    // action is allowed. The handler installed is async-signal-safe (see `on_signal`)
    // and the eventfd it writes exists (`receiver` above).
    syscall!(unsafe { libc::sigaction(signo, &raw const action, std::ptr::null_mut()) })?;
    Ok(())
}

/// Whether `signo` was delivered since the last `take(signo)`; clears the flag.
pub fn take(signo: i32) -> bool {
    PENDING
        .get(signo as usize)
        .is_some_and(|flag| flag.swap(false, Ordering::SeqCst))
}

/// The handler [`install`] installs. Async-signal-safe: it touches only atomics and
/// calls only `write(2)` and reads/writes `errno` (a thread-local the C library
/// exposes for exactly this); it allocates nothing and takes no lock.
extern "C" fn on_signal(signo: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's
    // life; reading it is async-signal-safe.
    let saved = unsafe { *libc::__errno_location() };
    if let Some(flag) = PENDING.get(signo as usize) {
        flag.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // The write cannot block: an eventfd write waits only when the counter would
        // pass u64::MAX - 1. Its result is ignored: there is nothing a handler could do.
        // SAFETY: async-signal-safe write(2) of a live local u64 to a never-closed eventfd.
        let _ = unsafe { libc::write(fd, (&raw const one).cast::<libc::c_void>(), 8) };
    }
    // SAFETY: as above; the interrupted code sees the errno it had.
    unsafe { *libc::__errno_location() = saved };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_sets_its_flag_and_wakes_the_receiver() {
        // SIGRTMAX - 1: no other test of this crate uses it.
        let signo = libc::SIGRTMAX() - 1;
        install(signo).unwrap();
        install(signo).unwrap(); // a second install changes nothing
        let rx = receiver().unwrap();
        assert!(
            std::ptr::eq(rx, receiver().unwrap()),
            "one receiver per process"
        );
        // SAFETY: raise takes no pointers; the handler has run when it returns.
        assert_eq!(unsafe { libc::raise(signo) }, 0);
        rx.wait().unwrap(); // returns: the handler wrote the eventfd
        assert!(take(signo));
        assert!(!take(signo), "take clears the flag");
    }

    #[test]
    fn only_catchable_non_fault_signals_are_allowed() {
        for ok in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGCHLD,
        ] {
            assert!(is_allowed(ok), "{ok}");
        }
        assert!(is_allowed(libc::SIGRTMIN()) && is_allowed(libc::SIGRTMAX()));
        for no in [
            0,
            -1,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            32,
            33,
            65,
        ] {
            assert!(!is_allowed(no), "{no}");
        }
        assert_eq!(
            install(libc::SIGKILL).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }
}
