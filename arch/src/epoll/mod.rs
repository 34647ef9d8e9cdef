//! The epoll backend: readiness, then the syscall, so that the layer above sees
//! completions exactly as under io_uring.
//!
//! The unpark eventfd is registered level-triggered with `EPOLLIN` under the reserved
//! token [`token::UNPARK`](crate::token::UNPARK). Fds that ops wait on are registered
//! edge-triggered with their fd number as the token (always below
//! [`token::RESERVED_MIN`](crate::token::RESERVED_MIN)); the op table is in `ready.rs`.
//!
//! # Drop
//!
//! Nothing outlives the driver: the kernel never holds a pointer into an op (every
//! system call that touches op memory is made by `perform`, synchronously, from
//! `submit`, `park` or `cancel`), so ops still waiting when the driver is dropped are
//! simply forgotten. Their memory is the owner's again once `drop` returns; no
//! completion comes for them.
//!
//! # Timeouts
//!
//! `epoll_wait` takes milliseconds. A timeout is rounded **up** to the next millisecond,
//! so a 0.3 ms park waits at least 0.3 ms (in fact 1 ms plus timer slack). Durations
//! longer than `i32::MAX` ms (about 24.8 days) are waited in `i32::MAX` ms pieces until
//! the deadline, so `park` still never returns early; a duration whose deadline does not
//! fit in an [`Instant`] waits without a timeout.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Submitted;
use crate::op::{Completion, OpCode, OpPtr};
use crate::sys::{Blocking, EventFd, syscall};

mod ready;
use crate::token;
use crate::unpark::{Shared, Unparker};

/// Interest in the unpark eventfd: level-triggered `EPOLLIN`, so a wake-up is reported
/// until the eventfd is drained. Miri only emulates edge-triggered epoll; there the
/// protocol still holds because every unpark that writes follows a drain (the counter
/// goes 0 -> 1, which is an edge), but natively we keep the more forgiving level mode.
const UNPARK_INTEREST: u32 = if cfg!(miri) {
    (libc::EPOLLIN | libc::EPOLLET) as u32
} else {
    libc::EPOLLIN as u32
};

/// How many events one `epoll_wait` can return.
const EVENTS_CAPACITY: usize = 256;

/// The longest timeout one `epoll_wait` call can express.
const MAX_WAIT: Duration = Duration::from_millis(i32::MAX as u64);

/// An epoll instance plus the unpark eventfd registered in it.
#[derive(Debug)]
pub(crate) struct EpollDriver {
    epfd: OwnedFd,
    unpark: Arc<Shared>,
    events: Vec<libc::epoll_event>,
    /// `epoll_pwait2` (nanosecond timeouts, Linux 5.11) works here; cleared
    /// the first time it answers ENOSYS, after which `epoll_wait` (whole
    /// milliseconds, rounded up) is used.
    pwait2: bool,
    /// Ops waiting for readiness.
    table: ready::ReadyTable,
    /// Completions not yet handed to the caller of `park`.
    pending: Vec<Completion>,
}

impl EpollDriver {
    /// Creates the epoll fd and the eventfd and registers the latter (level-triggered).
    pub(crate) fn new() -> io::Result<EpollDriver> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };

        let unpark = Shared::new(EventFd::new(Blocking::No)?);
        let mut event = libc::epoll_event {
            events: UNPARK_INTEREST,
            u64: token::UNPARK,
        };
        // SAFETY: both fds are open (owned above); `event` is a live local that the kernel
        // only reads during the call.
        syscall!(unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                unpark.eventfd().as_raw_fd(),
                &raw mut event,
            )
        })?;

        Ok(EpollDriver {
            epfd,
            unpark,
            events: Vec::with_capacity(EVENTS_CAPACITY),
            pwait2: !cfg!(miri),
            table: ready::ReadyTable::default(),
            pending: Vec::new(),
        })
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.unpark.clone())
    }

    /// See [`Driver::park`](crate::Driver::park).
    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        let timeout = if self.pending.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let res = self.park_inner(timeout);
        out.append(&mut self.pending);
        res
    }

    /// See `Driver::submit_or_finish`: ops that need no waiting finish here.
    ///
    /// # Safety
    ///
    /// As `Driver::submit`.
    #[inline]
    pub(crate) unsafe fn submit<C: OpCode + ?Sized>(
        &mut self,
        user_data: u64,
        code: NonNull<C>,
        erased: OpPtr,
    ) -> io::Result<Submitted> {
        // SAFETY: forwarded from the caller.
        let done = unsafe {
            self.table.submit(
                self.epfd.as_raw_fd(),
                user_data,
                code,
                erased,
                &mut self.pending,
            )
        };
        Ok(done.map_or(Submitted::Queued, Submitted::Done))
    }

    /// See `Driver::cancel`.
    pub(crate) fn cancel(&mut self, user_data: u64) {
        self.table.cancel(user_data, &mut self.pending);
    }

    /// See `Driver::in_flight`.
    pub(crate) fn in_flight(&self) -> usize {
        self.table.in_flight()
    }

    /// See `Driver::drain`: cancelling a waiting op is immediate under epoll.
    pub(crate) fn drain(&mut self, out: &mut Vec<Completion>) -> bool {
        self.table.cancel_all(&mut self.pending);
        out.append(&mut self.pending);
        true
    }

    /// See `Driver::release_fd`.
    pub(crate) fn release_fd(&mut self, fd: std::os::fd::RawFd) {
        self.table
            .release(self.epfd.as_raw_fd(), fd, &mut self.pending);
    }

    fn park_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let Some(timeout) = timeout else {
            return self.wait(-1).map(drop);
        };
        if self.pwait2 {
            match self.wait_precise(timeout) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => self.pwait2 = false,
                other => return other.map(drop),
            }
        }
        if timeout <= MAX_WAIT {
            return self.wait(millis_rounded_up(timeout)).map(drop);
        }
        // Longer than one epoll_wait can express: wait in pieces until the deadline.
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.wait(-1).map(drop);
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left <= MAX_WAIT {
                return self.wait(millis_rounded_up(left)).map(drop);
            }
            if self.wait(i32::MAX)? == Wait::Woken {
                return Ok(());
            }
        }
    }

    /// One `epoll_pwait2` with a nanosecond timeout (so a 300 µs timer is not
    /// rounded up to 1 ms), then dispatch of the events. ENOSYS is returned
    /// as is so the caller can fall back to `epoll_wait`.
    fn wait_precise(&mut self, timeout: Duration) -> io::Result<Wait> {
        self.events.clear();
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: the event buffer has room for `capacity()` events, passed as
        // `maxevents`; `ts` is a live local the kernel only reads; a null
        // sigmask means "do not change the mask" (sigsetsize is then ignored).
        let n = syscall!(unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.capacity() as libc::c_int,
                &raw const ts,
                std::ptr::null::<libc::sigset_t>(),
                std::mem::size_of::<libc::sigset_t>(),
            )
        });
        self.dispatch(n.map(|n| n as usize))
    }

    /// One `epoll_wait` with `timeout_ms` (-1 = forever), then dispatch of the events.
    fn wait(&mut self, timeout_ms: i32) -> io::Result<Wait> {
        self.events.clear();
        // SAFETY: the buffer has room for `capacity()` events, which is what we pass as
        // `maxevents`; the kernel writes at most that many and we set the length to the
        // count it reports below.
        let n = syscall!(unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.capacity() as i32,
                timeout_ms,
            )
        });
        self.dispatch(n.map(|n| n as usize))
    }

    /// Handle the outcome of a wait: the `n` events the kernel just wrote
    /// into `events`, or the error (a wait interrupted by a signal counts as
    /// woken).
    fn dispatch(&mut self, n: io::Result<usize>) -> io::Result<Wait> {
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Wait::Woken),
            Err(e) => return Err(e),
        };
        assert!(n <= self.events.capacity());
        // SAFETY: epoll_wait / epoll_pwait2 initialised the first `n` entries
        // (n <= capacity, checked above).
        unsafe { self.events.set_len(n) };

        for i in 0..n {
            // Copy out: `epoll_event` is packed on x86_64, so no references into it.
            let (data, events) = (self.events[i].u64, self.events[i].events);
            match data {
                token::UNPARK => {
                    self.unpark.eventfd().drain()?;
                    self.unpark.clear();
                }
                fd if fd < token::RESERVED_MIN => {
                    self.table
                        .on_event(fd as std::os::fd::RawFd, events, &mut self.pending);
                }
                other => debug_assert!(false, "epoll reported an unknown token {other:#x}"),
            }
        }
        Ok(if n == 0 { Wait::TimedOut } else { Wait::Woken })
    }
}

/// What one `epoll_wait` ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Events arrived, or a signal interrupted the wait.
    Woken,
    TimedOut,
}

/// `d` in whole milliseconds, rounded up, for `d <= MAX_WAIT`.
fn millis_rounded_up(d: Duration) -> i32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_never_down() {
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(millis_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_micros(300)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(5)), 5);
        assert_eq!(millis_rounded_up(Duration::from_micros(5_001)), 6);
        assert_eq!(millis_rounded_up(MAX_WAIT), i32::MAX);
        assert_eq!(millis_rounded_up(Duration::MAX), i32::MAX);
    }
}
