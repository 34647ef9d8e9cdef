//! `Event`: a flag tasks can wait for (`asyncio.Event`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::waiters::{Key, WaitList, debug_state};
use crate::rt::budget::poll_proceed;

/// A flag that starts clear; [`set`](Event::set) wakes every task waiting
/// in [`wait`](Event::wait), and later `wait`s return at once until
/// [`clear`](Event::clear).
///
/// As in asyncio, a waiter woken by `set` returns even if the flag is
/// cleared again before it runs. Single-loop: `Send`, not `Sync`.
///
/// ```
/// use std::rc::Rc;
/// use coil::sync::Event;
///
/// coil::run(async {
///     let ev = Rc::new(Event::new());
///     let waiter = coil::spawn({
///         let ev = ev.clone();
///         async move {
///             ev.wait().await;
///             "woken"
///         }
///     });
///     coil::task::yield_now().await;
///     ev.set();
///     assert_eq!(waiter.await.unwrap(), "woken");
///     assert!(ev.is_set());
/// });
/// ```
pub struct Event {
    state: RefCell<State>,
}

#[derive(Debug)]
struct State {
    set: bool,
    waiters: WaitList<()>,
}

impl Event {
    /// A clear event.
    pub const fn new() -> Event {
        Event {
            state: RefCell::new(State {
                set: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let wakers = {
            let mut st = self.state.borrow_mut();
            st.set = true;
            st.waiters.notify_all()
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
    }

    /// Clears the flag: later `wait`s block until the next `set`.
    pub fn clear(&self) {
        self.state.borrow_mut().set = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.borrow().set
    }

    /// Waits until the flag is set (returns at once if it is).
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            event: self,
            key: None,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_state(f, "Event", &self.state, |d, st| {
            d.field("set", &st.set).field("waiters", &st.waiters.len());
        })
    }
}

/// The future of [`Event::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    event: &'a Event,
    key: Option<Key>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let res = self.poll_leaf(cx);
        crate::rt::debug::note(res, || crate::rt::Awaiting::Sync("event wait"))
    }
}

impl Wait<'_> {
    /// `poll`; a `Pending` is noted in the await tree (`Handle::dump`).
    fn poll_leaf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let coop = ready!(poll_proceed(cx));
        let mut st = this.event.state.borrow_mut();
        // Woken by `set`: return even if the flag was cleared since.
        let notified = ready!(st.waiters.poll_key(&mut this.key, cx.waker())).is_some();
        if !notified && !st.set {
            this.key = Some(st.waiters.push_back((), cx.waker().clone()));
            return Poll::Pending;
        }
        coop.made_progress();
        Poll::Ready(())
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // A broadcast owes nothing to the next waiter: just leave.
            let _ = self.event.state.borrow_mut().waiters.remove(key);
        }
    }
}
