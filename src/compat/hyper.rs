//! `hyper`: what hyper 1.x needs from a runtime. `hyper::rt::{Read, Write}`
//! for [`Compat`] (the adapter's shared state machine, `io.rs`), an executor
//! that spawns on the running coil loop ([`HyperExecutor`]), and a timer of
//! coil sleeps ([`HyperTimer`]).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use super::{Compat, OwnedRead, OwnedWrite};
use crate::time::{Instant, Sleep};

impl<T: OwnedRead> hyper::rt::Read for Compat<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(())); // no room: start no read
        }
        let this = self.get_mut();
        let avail = ready!(this.poll_fill_inner(cx))?;
        let n = avail.len().min(buf.remaining());
        buf.put_slice(&avail[..n]);
        this.consume_inner(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: OwnedWrite> hyper::rt::Write for Compat<T> {
    super::io::compat_write_methods!();

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close_inner(cx)
    }

    /// Yes: the slices are copied into one buffer and sent by one write.
    fn is_write_vectored(&self) -> bool {
        true
    }
}

/// hyper's executor on coil: `execute` spawns the future as a detached task
/// on the loop running on this thread (what HTTP/2 connections and
/// `hyper-util`'s pools ask for; HTTP/1.1 needs none).
///
/// The futures need not be `Send`: like [`coil::spawn`](crate::spawn), it
/// runs them on this thread's loop. Calling it where no coil loop runs
/// panics, as `coil::spawn` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperExecutor;

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        // Dropping the handle detaches the task: it runs to its end.
        drop(crate::spawn(fut));
    }
}

/// hyper's timer on coil: its sleeps are coil's [`Sleep`] (the running loop's
/// timing wheel, 125 µs ticks, never early), which hyper uses for
/// `header_read_timeout`, keep-alive and the client's timeouts.
///
/// ```
/// let server = hyper::server::conn::http1::Builder::new()
///     .timer(coil::compat::HyperTimer)
///     .header_read_timeout(std::time::Duration::from_secs(5))
///     .clone();
/// # drop(server);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

/// A coil [`Sleep`] as hyper's `rt::Sleep`.
struct HyperSleep(Sleep);

// hyper requires its sleeps to be `Send + Sync`; a coil `Sleep` is (its
// deadline and timer key are plain data, and dropping it on another thread
// leaves the timer to fire once, harmlessly, in its own loop).
static_assertions::assert_impl_all!(Sleep: Send, Sync, Unpin);

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // hyper counts from the call (tokio's sleep), not from the first
        // poll as `coil::time::sleep` does.
        Box::pin(HyperSleep(crate::time::sleep_until(
            Instant::now() + duration,
        )))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep_until(Instant::from_std(
            deadline,
        ))))
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    /// Moves the sleep's deadline in place (no new allocation) when it is
    /// one of ours.
    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(mut ours) => ours.0.reset(Instant::from_std(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
