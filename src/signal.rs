//! Unix signals as futures and streams: [`ctrl_c`] and [`signal`], asyncio's
//! `loop.add_signal_handler` (tokio's `signal::ctrl_c` and `signal::unix::signal`).
//!
//! This module owns the listeners and the dispatch thread; the signal handler, its flags
//! and its eventfd are `coil_arch::signal`. The design, and why it is not a signalfd, is
//! in `docs/decisions/0011-signals.md`. In short:
//!
//! - The first listener for a signal installs coil's handler for it, process-wide. The
//!   handler only sets a flag and writes an eventfd (both async-signal-safe), on
//!   whichever thread the kernel delivered to: a loop thread, a
//!   [blocking-pool](crate::blocking) thread, one of the program's own. Nothing has to
//!   block the signal anywhere.
//! - One thread per process (`coil-signal`, started with the first listener) waits on
//!   that eventfd and wakes every listener of each signal that came, through its
//!   task's waker, so listeners may sit on any number of runtimes on any threads.
//! - A listener sees every delivery made after it was created, even one that came
//!   while nobody polled it; deliveries it has not looked at yet are merged into one
//!   (the kernel merges pending standard signals the same way). Several listeners of
//!   one signal each see it.
//! - **Disposition.** Once coil has handled a signal it keeps handling it for the life
//!   of the process, also after the last listener is dropped: a later delivery with no
//!   listener does nothing. So after `ctrl_c()` was called once, Ctrl-C no longer ends
//!   the program by itself (as in tokio). Restoring the default when the last listener
//!   goes would race with deliveries already on their way (one landing just after the
//!   restore kills a process that was shutting down cleanly).
//! - Signals the program faults with (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`,
//!   `SIGTRAP`, `SIGSYS`), the uncatchable `SIGKILL` and `SIGSTOP`, and the real-time
//!   signals the C library keeps for itself are refused with `InvalidInput`.
//! - A handler installed by someone else for the same signal is replaced, not chained.
//!   After `fork()` the child makes its own eventfd and thread for listeners it creates;
//!   listeners inherited from the parent stay silent in the child.
//!
//! ## A server that stops on Ctrl-C
//!
//! Accept connections until SIGINT comes, then stop ([`select`](crate::select()) drops
//! the pending accept). The test at the end sends the SIGINT itself.
//!
//! ```standalone_crate
//! use coil::Either;
//! use coil::net::{TcpListener, TcpStream};
//!
//! coil::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let mut ctrl_c = coil::signal::ctrl_c();
//!     # coil::spawn(async move {
//!     #     let _conn = TcpStream::connect(addr).await.unwrap();
//!     #     // SAFETY: raise only sends a signal to this thread.
//!     #     unsafe { libc::raise(libc::SIGINT) };
//!     # });
//!     let mut served = 0;
//!     loop {
//!         match coil::select(listener.accept(), &mut ctrl_c).await {
//!             Either::Left(conn) => {
//!                 let (_stream, _peer) = conn?;
//!                 served += 1; // a real server spawns a task per connection
//!             }
//!             Either::Right(stopped) => {
//!                 stopped?;
//!                 println!("SIGINT: stopping after {served} connections");
//!                 break;
//!             }
//!         }
//!     }
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Several signals, several listeners
//!
//! ```standalone_crate
//! use coil::signal::{SignalKind, signal};
//!
//! coil::run(async {
//!     let mut a = signal(SignalKind::user_defined1())?;
//!     let mut b = signal(SignalKind::user_defined1())?;
//!     // SAFETY: raise only sends a signal to this thread.
//!     unsafe { libc::raise(libc::SIGUSR1) };
//!     a.recv().await; // both listeners see the one delivery
//!     b.recv().await;
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use coil_arch::signal::{self as sys, NSIG, Receiver};

use crate::stream::Stream;

/// A signal number, with constructors for the common ones (tokio's `SignalKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal number; [`signal`] refuses the ones coil does not handle.
    pub const fn from_raw(signo: i32) -> SignalKind {
        SignalKind(signo)
    }

    /// The signal number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (`kill`'s default, systemd's stop).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; daemons often take it as "reload".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD`: a child process stopped or ended.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGPIPE` (Rust programs start with it ignored; listening makes it delivered).
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGWINCH`: the terminal changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

/// A listener's wake-up: the waker of the task that last polled it.
#[derive(Default)]
struct Listener {
    waker: Mutex<Option<Waker>>,
}

/// One signal number's deliveries and listeners.
#[derive(Default)]
struct Slot {
    /// How many times the dispatch thread saw the signal (merged deliveries count once).
    generation: AtomicU64,
    listeners: Mutex<Vec<Arc<Listener>>>,
}

impl Slot {
    /// Counts a delivery of `signo` if the handler flagged one: takes the flag and
    /// bumps the generation under the listeners' lock, then wakes every listener. A
    /// listener stores its waker before it reads the generation, so it sees either
    /// the new generation or its waker taken and woken here. A new listener
    /// registers under the same lock after calling this itself, so a delivery
    /// flagged before it was made is counted before its starting generation.
    fn catch_up(&self, signo: i32) {
        let wakers: Vec<Waker> = {
            let listeners = lock(&self.listeners);
            if !sys::take(signo) {
                return;
            }
            self.generation.fetch_add(1, Ordering::SeqCst);
            listeners
                .iter()
                .filter_map(|l| lock(&l.waker).take())
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The process's listeners, one slot per signal number; never freed.
struct Registry {
    slots: [Slot; NSIG],
}

/// Locks `m`; a poisoned lock is taken as it is (every critical section here leaves
/// its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry of this process, with its dispatch thread started, made on first use
/// (and again in a forked child, where the parent's thread does not exist).
///
/// Fork: the lock is taken only when a listener is made (and held while the
/// dispatch thread starts), never by a spawn, an op, a timer or a runtime's
/// construction. A child forked while another thread held it would wait for
/// it for good at its first listener, before the pid check; not handled
/// (docs/reliability.md, section 2.5).
fn registry() -> io::Result<&'static Registry> {
    static REGISTRY: Mutex<Option<(u32, &'static Registry)>> = Mutex::new(None);
    let mut current = lock(&REGISTRY);
    let pid = std::process::id();
    if let Some((owner, registry)) = *current
        && owner == pid
    {
        return Ok(registry);
    }
    let receiver = sys::receiver()?;
    let registry: &'static Registry = Box::leak(Box::new(Registry {
        slots: std::array::from_fn(|_| Slot::default()),
    }));
    std::thread::Builder::new()
        .name("coil-signal".into())
        .spawn(move || dispatch(receiver, registry))?;
    *current = Some((pid, registry));
    Ok(registry)
}

/// The dispatch thread: wait for the handler's eventfd, then deliver every signal
/// whose flag is set.
fn dispatch(receiver: &Receiver, registry: &Registry) {
    // `wait` fails only if the eventfd is gone, which nothing does: then stop rather
    // than spin.
    while receiver.wait().is_ok() {
        for (signo, slot) in registry.slots.iter().enumerate() {
            slot.catch_up(signo as i32);
        }
    }
}

/// A stream of deliveries of one signal: `loop.add_signal_handler(sig, cb)` as an
/// `async for` over [`recv`](Signal::recv) (tokio's `signal::unix::Signal`).
///
/// Sees every delivery made after [`signal`] returned it, polled or not; deliveries
/// not yet looked at are merged into one. `Send + Sync`, usable on any runtime of
/// either kernel driver (not the simulator, whose virtual clock does not wait for a
/// real-time delivery: decision 0011);
/// dropping it unregisters it (the handler stays installed: module docs).
pub struct Signal {
    kind: SignalKind,
    slot: &'static Slot,
    /// The slot's generation this listener has seen.
    seen: u64,
    listener: Arc<Listener>,
}

/// Listens for `kind`: installs coil's handler for it (once per process; the default
/// disposition is not restored later, see the module docs) and registers a new listener.
///
/// `InvalidInput` for `SIGKILL`, `SIGSTOP`, the fault signals and the C library's
/// real-time signals; the OS error if the handler could not be installed.
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let signo = kind.as_raw();
    if !sys::is_allowed(signo) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coil::signal cannot listen for signal {signo}"),
        ));
    }
    let registry = registry()?;
    sys::install(signo)?;
    let slot = &registry.slots[signo as usize];
    let listener = Arc::new(Listener::default());
    // Count a delivery the handler flagged and the dispatch thread has not taken
    // yet, so that it is not reported to this listener, made after it.
    slot.catch_up(signo);
    let seen = {
        let mut listeners = lock(&slot.listeners);
        listeners.push(listener.clone());
        slot.generation.load(Ordering::SeqCst)
    };
    Ok(Signal {
        kind,
        slot,
        seen,
        listener,
    })
}

impl Signal {
    /// The signal this listens for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Waits for the next delivery (or returns at once if one came since the last).
    /// tokio's returns `Option<()>`; a coil listener never ends, so this returns `()`.
    pub async fn recv(&mut self) {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Signal::recv): `Ready` once per (merged) delivery.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take_delivery() {
            return Poll::Ready(());
        }
        {
            let mut waker = lock(&self.listener.waker);
            match &mut *waker {
                Some(w) => w.clone_from(cx.waker()),
                None => *waker = Some(cx.waker().clone()),
            }
        }
        // Again, after the waker is in place: `Slot::deliver` bumps before it wakes.
        if self.take_delivery() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Whether a delivery came since the last one seen; marks it seen.
    fn take_delivery(&mut self) -> bool {
        let now = self.slot.generation.load(Ordering::SeqCst);
        let new = now != self.seen;
        self.seen = now;
        new
    }
}

impl Stream for Signal {
    type Item = ();

    /// Never ends: `Some(())` per (merged) delivery.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        lock(&self.slot.listeners).retain(|l| !Arc::ptr_eq(l, &self.listener));
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("kind", &self.kind)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

/// Resolves at the next `SIGINT` (Ctrl-C) delivered after this call: tokio's
/// `signal::ctrl_c`.
///
/// The listener is registered here, not at the first poll, so a Ctrl-C between this
/// call and the first `.await` is not lost. Once called, SIGINT no longer ends the
/// process by itself (module docs). Resolves to the error if the handler could not be
/// installed.
pub fn ctrl_c() -> CtrlC {
    CtrlC {
        signal: Some(signal(SignalKind::interrupt())),
    }
}

/// The future returned by [`ctrl_c`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct CtrlC {
    /// `None` once it has resolved.
    signal: Option<io::Result<Signal>>,
}

impl Future for CtrlC {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.signal.take() {
            None => panic!("CtrlC polled after completion"),
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok(mut signal)) => {
                let poll = signal.poll_recv(cx).map(Ok);
                if poll.is_pending() {
                    this.signal = Some(Ok(signal));
                }
                poll
            }
        }
    }
}
