//! The two intrusive lists against `VecDeque` models, like tokio's
//! `fuzz_linked_list`: the owned task list (`task/list.rs`) and the waiter
//! list of every `sync` primitive (`sync/waiters.rs`), through
//! `coil::fuzz::{owned_list, wait_list}`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use coil::fuzz::owned_list::{List, Task};
use coil::fuzz::wait_list::{Key, Polled, Removed, WaitList};

use crate::Bytes;

/// Bytes → the first byte picks the list, the rest is its program.
pub fn intrusive_list(data: &[u8]) {
    let mut b = Bytes(data);
    match b.u8() {
        Some(op) if op % 2 == 0 => owned_list(&mut b),
        Some(_) => wait_list(&mut b),
        None => {}
    }
}

// ---------------------------------------------------------------------------
// Owned task list
// ---------------------------------------------------------------------------

/// Push (at the head), remove any element, pop (the head), against a
/// `VecDeque` whose front is the head. Every pop must return the model's
/// front; the final drain checks the whole order, and every unlink must leave
/// the task's links clear for a later push (a task may be re-inserted).
fn owned_list(b: &mut Bytes<'_>) {
    let list = List::default();
    let mut model: VecDeque<Task> = VecDeque::new();
    // Tasks in no list, to push (again).
    let mut loose: Vec<Task> = Vec::new();
    while let Some(op) = b.u8() {
        match op % 4 {
            0 | 1 => {
                let t = if op % 4 == 1 && !loose.is_empty() {
                    loose.swap_remove(usize::from(op / 4) % loose.len())
                } else if model.len() + loose.len() < 1024 {
                    Task::new()
                } else {
                    continue;
                };
                // SAFETY: `t` is in no list (new or loose), this thread's
                // (the target is single-threaded), with its one reference.
                unsafe { list.push(t) };
                model.push_front(t);
            }
            2 if !model.is_empty() => {
                let at = usize::from(b.u16().unwrap_or(0)) % model.len();
                let t = model.remove(at).expect("index in range");
                // SAFETY: the model says `t` is in the list.
                unsafe { list.remove(t) };
                loose.push(t);
            }
            3 => {
                let got = list.pop();
                assert_eq!(got, model.pop_front(), "pop returned the wrong task");
                loose.extend(got);
            }
            _ => {}
        }
        assert_eq!(list.len(), model.len(), "len after op {op}");
    }
    while let Some(t) = list.pop() {
        assert_eq!(Some(t), model.pop_front(), "drain order");
        loose.push(t);
    }
    assert!(model.is_empty(), "tasks left in the model: {}", model.len());
    assert_eq!(list.len(), 0);
    for t in loose {
        // SAFETY: each loose task is in no list (handed back by the list),
        // released once: `loose` holds each task once and is consumed here.
        unsafe { t.release() };
    }
}

// ---------------------------------------------------------------------------
// Waiter list
// ---------------------------------------------------------------------------

/// A waker that logs its waiter's id and a version (which `poll` installed it).
struct Tag {
    id: u32,
    version: u32,
    log: Arc<Mutex<Vec<(u32, u32)>>>,
}

impl Wake for Tag {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push((self.id, self.version));
    }
}

/// One waiter of the model: its key, id (the data stored), and the version of
/// the last waker it registered.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    key: Key,
    id: u32,
    version: u32,
}

/// Push back/front, notify the front or all, poll (take a notification or
/// refresh the waker), remove (queued, notified, or stale keys), against a
/// `VecDeque` of queued waiters plus a set of notified ones. Checks the order
/// of notifications, that the waker returned is the last one registered, what
/// `remove` reports for each state (the hand-off rule), that stale keys are
/// dead, and the list's own invariant walk after every step.
fn wait_list(b: &mut Bytes<'_>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let waker = |id: u32, version: u32| {
        Waker::from(Arc::new(Tag {
            id,
            version,
            log: log.clone(),
        }))
    };
    let mut list = WaitList::default();
    let mut queued: VecDeque<Waiter> = VecDeque::new();
    let mut notified: Vec<Waiter> = Vec::new();
    let mut stale: Vec<Key> = Vec::new();
    let mut next_id = 1u32; // 0 is `u32::default()`: what a stale poll hands back.
    let mut expect_wakes: Vec<(u32, u32)> = Vec::new();
    while let Some(op) = b.u8() {
        let pick = usize::from(op >> 3);
        match op % 8 {
            // Push at the back or (a notified waiter keeping its turn) front.
            op @ (0..=2) if queued.len() + notified.len() < 4096 => {
                let id = next_id;
                next_id += 1;
                let key = if op == 2 {
                    list.push_front(id, waker(id, 0))
                } else {
                    list.push_back(id, waker(id, 0))
                };
                let w = Waiter {
                    key,
                    id,
                    version: 0,
                };
                if op == 2 {
                    queued.push_front(w);
                } else {
                    queued.push_back(w);
                }
            }
            3 => {
                let w = list.notify_front();
                assert_eq!(
                    w.is_some(),
                    !queued.is_empty(),
                    "notify_front on {queued:?}"
                );
                if let Some(m) = queued.pop_front() {
                    expect_wakes.push((m.id, m.version));
                    notified.push(m);
                }
                w.into_iter().for_each(Waker::wake);
            }
            4 => {
                let ws = list.notify_all();
                assert_eq!(ws.len(), queued.len(), "notify_all count");
                for m in queued.drain(..) {
                    expect_wakes.push((m.id, m.version));
                    notified.push(m);
                }
                ws.into_iter().for_each(Waker::wake);
            }
            // Poll a queued waiter (new waker, or the same one again).
            5 if !queued.is_empty() => {
                let at = pick % queued.len();
                let m = &mut queued[at];
                if b.u8().unwrap_or(0).is_multiple_of(2) {
                    m.version += 1;
                }
                let polled = list.poll(m.key, &waker(m.id, m.version));
                assert_eq!(polled, Polled::Pending, "poll of queued {m:?}");
            }
            // Poll a notified waiter: takes the hand-off.
            6 if !notified.is_empty() => {
                let m = notified.swap_remove(pick % notified.len());
                let polled = list.poll(m.key, &waker(m.id, m.version));
                assert_eq!(polled, Polled::Notified(m.id), "poll of notified {m:?}");
                stale.push(m.key);
            }
            // Remove a queued, a notified or a stale waiter.
            7 => {
                let total = queued.len() + notified.len() + stale.len();
                if total == 0 {
                    continue;
                }
                let at = pick % total;
                let (key, want) = if at < queued.len() {
                    let m = queued.remove(at).expect("index in range");
                    (m.key, Removed::Queued(m.id))
                } else if at < queued.len() + notified.len() {
                    let m = notified.swap_remove(at - queued.len());
                    (m.key, Removed::Notified(m.id))
                } else {
                    let k = stale[at - queued.len() - notified.len()];
                    // A stale key stays dead for poll too (rule 4).
                    assert_eq!(
                        list.poll(k, Waker::noop()),
                        Polled::Notified(0),
                        "poll of a stale key"
                    );
                    (k, Removed::Gone)
                };
                assert_eq!(list.remove(key), want, "remove of {key:?}");
                if want != Removed::Gone {
                    stale.push(key);
                }
            }
            _ => {}
        }
        assert_eq!(
            std::mem::take(&mut *log.lock().unwrap()),
            std::mem::take(&mut expect_wakes),
            "wakers returned by notify (id, version of the last registered)"
        );
        assert_eq!(list.len(), queued.len(), "len");
        assert_eq!(list.front(), queued.front().map(|m| m.id), "front");
        list.check();
    }
    // Drain: what is left notifies front to back, in the model's order.
    for m in queued.drain(..) {
        assert!(list.notify_front().is_some(), "drain: {m:?} missing");
        assert_eq!(
            list.poll(m.key, Waker::noop()),
            Polled::Notified(m.id),
            "drain order"
        );
    }
    assert_eq!(list.len(), 0);
    assert!(list.notify_front().is_none());
    list.check();
}
