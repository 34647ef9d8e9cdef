//! Semaphore (and Mutex) under random acquire / cancel / release sequences
//! on a real loop: never more permits out than it has, all back at the end.
//! Then hand-polled waiters of `Condition`, `Semaphore` and `Queue`, woken
//! and dropped in random orders at random points (queued, woken and not
//! polled, polled with a spent budget, re-locking): `Condition` and
//! `Semaphore` against an exact model (who is woken, what each poll
//! returns, free permits), `Queue` against the rule that no waiter waits
//! beside what it waits for and no item is lost or duplicated.
//! `PROPTEST_CASES` sets the case count (default 64; eight times that for
//! the hand-polled ones).

use crate::support;

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;

use coil::queue::{Get, Put, Queue};
use coil::sync::{Condition, Mutex, Semaphore, SemaphorePermit};
use coil::task::yield_now;
use coil::{Runtime, Task, spawn};
use proptest::prelude::*;
use support::Probe;

#[derive(Debug, Clone)]
enum Op {
    /// Spawn a task that acquires `n` permits, holds them for `hold`
    /// yields, then releases them.
    Spawn { n: usize, hold: u8 },
    /// Cancel the task at this index (mod the number spawned).
    Cancel(usize),
    /// Let the loop run this many ticks.
    Yield(u8),
    /// Add a permit, and remember to forget one later.
    AddPermit,
}

fn op(cap: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..=cap, 0u8..4).prop_map(|(n, hold)| Op::Spawn { n, hold }),
        3 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u8..3).prop_map(Op::Yield),
        1 => Just(Op::AddPermit),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn semaphore_never_over_grants(cap in 1usize..5, ops in prop::collection::vec(op(4), 0..80)) {
        let rt = Runtime::new().unwrap();
        let (max_seen, left, total) = rt.block_on(async move {
            let sem = Rc::new(Semaphore::new(cap));
            let total = Rc::new(Cell::new(cap));
            let held = Rc::new(Cell::new(0usize));
            let max_seen = Rc::new(Cell::new(0usize));
            let mut tasks: Vec<Task<()>> = Vec::new();
            for op in ops {
                match op {
                    Op::Spawn { n, hold } => {
                        let n = n.min(total.get());
                        let (sem, held, max_seen, total) =
                            (sem.clone(), held.clone(), max_seen.clone(), total.clone());
                        tasks.push(spawn(async move {
                            let p = sem.acquire_many(n).await.unwrap();
                            held.set(held.get() + n);
                            max_seen.set(max_seen.get().max(held.get()));
                            assert!(held.get() <= total.get(), "over-granted");
                            struct Release(Rc<Cell<usize>>, usize);
                            impl Drop for Release {
                                fn drop(&mut self) {
                                    self.0.set(self.0.get() - self.1);
                                }
                            }
                            let _r = Release(held, n);
                            for _ in 0..hold {
                                yield_now().await;
                            }
                            drop(p);
                        }));
                    }
                    Op::Cancel(i) if !tasks.is_empty() => {
                        let i = i % tasks.len();
                        tasks[i].cancel();
                    }
                    Op::Yield(k) => {
                        for _ in 0..k {
                            yield_now().await;
                        }
                    }
                    Op::AddPermit => {
                        sem.add_permits(1);
                        total.set(total.get() + 1);
                    }
                    _ => {}
                }
                assert!(held.get() <= total.get());
                assert!(held.get() + sem.available_permits() <= total.get());
            }
            // Cancel whoever still waits for more than exists; join the rest.
            for t in tasks {
                t.cancel();
                let _ = t.await;
            }
            assert_eq!(held.get(), 0);
            (max_seen.get(), sem.available_permits(), total.get())
        });
        prop_assert!(max_seen <= total);
        prop_assert_eq!(left, total, "every permit came back");
    }

    #[test]
    fn mutex_excludes_under_random_cancellation(
        script in prop::collection::vec((any::<bool>(), 0u8..3), 1..40),
    ) {
        let rt = Runtime::new().unwrap();
        let (count, expected_max) = rt.block_on(async move {
            let m = Rc::new(Mutex::new(0u32));
            let inside = Rc::new(Cell::new(0u32));
            let mut tasks = Vec::new();
            for (cancel, hold) in script.iter().copied() {
                let (m, inside) = (m.clone(), inside.clone());
                let t = spawn(async move {
                    let mut g = m.lock().await;
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1, "two holders");
                    for _ in 0..hold {
                        yield_now().await;
                    }
                    *g += 1;
                    inside.set(inside.get() - 1);
                });
                if cancel {
                    yield_now().await;
                    t.cancel();
                }
                tasks.push(t);
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.is_ok() as u32;
            }
            assert!(!m.is_locked());
            let v = *m.lock().await;
            (v, done)
        });
        prop_assert_eq!(count, expected_max);
    }
}

// ------------------------------------------------------------ Condition

#[derive(Debug, Clone)]
enum CondOp {
    Notify(usize),
    NotifyAll,
    Poll(usize),
    PollSpent(usize),
    Drop(usize),
    /// The producer takes the lock if it is free.
    Lock,
    Unlock,
    /// A new waiter: with the producer's guard if it holds the lock, or
    /// with a free lock.
    NewWaiter,
}

fn cond_op() -> impl Strategy<Value = CondOp> {
    prop_oneof![
        3 => (0usize..3).prop_map(CondOp::Notify),
        1 => Just(CondOp::NotifyAll),
        4 => any::<usize>().prop_map(CondOp::Poll),
        2 => any::<usize>().prop_map(CondOp::PollSpent),
        3 => any::<usize>().prop_map(CondOp::Drop),
        2 => Just(CondOp::Lock),
        2 => Just(CondOp::Unlock),
        1 => Just(CondOp::NewWaiter),
    ]
}

/// A condition waiter in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CondW {
    /// In the condition's queue.
    Queued,
    /// Notified, not yet polled; `owed`: by `notify` (passed on if unused).
    Notified { owed: bool },
    /// Took its notification and locks the mutex again; `on_lock`: queued
    /// on the mutex (or handed it), else not yet asked (spent budget).
    Relock { owed: bool, on_lock: bool },
    /// Returned or dropped.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Free,
    Producer,
    Waiter(usize),
}

/// The rule: FIFO notifications; the lock handed FIFO on unlock; a waiter
/// dropped holding a `notify` notification (not yet returned) passes it on.
#[derive(Debug)]
struct CondModel {
    w: Vec<CondW>,
    wakes: Vec<usize>,
    cond: VecDeque<usize>,
    holder: Holder,
    lock_q: VecDeque<usize>,
}

impl CondModel {
    fn push(&mut self) {
        self.cond.push_back(self.w.len());
        self.w.push(CondW::Queued);
        self.wakes.push(0);
    }

    fn notify(&mut self, k: usize, owed: bool) -> usize {
        let mut n = 0;
        while n < k {
            let Some(i) = self.cond.pop_front() else {
                break;
            };
            self.w[i] = CondW::Notified { owed };
            self.wakes[i] += 1;
            n += 1;
        }
        n
    }

    fn unlock(&mut self) {
        self.holder = match self.lock_q.pop_front() {
            Some(i) => {
                self.wakes[i] += 1;
                Holder::Waiter(i)
            }
            None => Holder::Free,
        };
    }

    /// Polls waiter `i` normally; whether it returns (its guard is dropped
    /// at once).
    fn poll(&mut self, i: usize) -> bool {
        let owed = match self.w[i] {
            CondW::Queued => return false,
            CondW::Notified { owed } | CondW::Relock { owed, .. } => owed,
            CondW::Gone => unreachable!(),
        };
        let on_lock = matches!(self.w[i], CondW::Relock { on_lock: true, .. });
        let ready = if on_lock {
            self.holder == Holder::Waiter(i)
        } else if self.holder == Holder::Free {
            assert!(self.lock_q.is_empty());
            true
        } else {
            self.lock_q.push_back(i);
            false
        };
        if ready {
            self.w[i] = CondW::Gone;
            self.unlock();
        } else {
            self.w[i] = CondW::Relock {
                owed,
                on_lock: true,
            };
        }
        ready
    }

    /// Polls waiter `i` with the budget spent: it takes a notification but
    /// cannot ask for the lock.
    fn poll_spent(&mut self, i: usize) {
        if let CondW::Notified { owed } = self.w[i] {
            self.w[i] = CondW::Relock {
                owed,
                on_lock: false,
            };
        }
    }

    fn drop(&mut self, i: usize) {
        match self.w[i] {
            CondW::Queued => self.cond.retain(|&j| j != i),
            CondW::Notified { owed } => {
                if owed {
                    self.notify(1, true);
                }
            }
            CondW::Relock { owed, on_lock } => {
                if on_lock {
                    if self.holder == Holder::Waiter(i) {
                        self.unlock();
                    } else {
                        self.lock_q.retain(|&j| j != i);
                    }
                }
                if owed {
                    self.notify(1, true);
                }
            }
            CondW::Gone => unreachable!(),
        }
        self.w[i] = CondW::Gone;
    }
}

// ------------------------------------------------------------ Semaphore

#[derive(Debug, Clone)]
enum SemOp {
    Acquire(usize),
    AddPermits(usize),
    /// Drops a held permit.
    Release(usize),
    Poll(usize),
    PollSpent(usize),
    Drop(usize),
    Close,
}

fn sem_op() -> impl Strategy<Value = SemOp> {
    prop_oneof![
        4 => (1usize..=3).prop_map(SemOp::Acquire),
        2 => (0usize..=2).prop_map(SemOp::AddPermits),
        3 => any::<usize>().prop_map(SemOp::Release),
        4 => any::<usize>().prop_map(SemOp::Poll),
        2 => any::<usize>().prop_map(SemOp::PollSpent),
        3 => any::<usize>().prop_map(SemOp::Drop),
        1 => Just(SemOp::Close),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SemW {
    Queued,
    /// Its permits were handed to it; not yet polled.
    Granted,
    /// Woken by `close`; not yet polled.
    Failed,
    /// Returned a permit, still held.
    Held,
    Gone,
}

#[derive(Debug)]
struct SemModel {
    permits: usize,
    closed: bool,
    queue: VecDeque<usize>,
    n: Vec<usize>,
    w: Vec<SemW>,
    wakes: Vec<usize>,
}

impl SemModel {
    /// Waiters handed permits that have not polled yet: while there are any,
    /// new requests queue behind them (no barging, as asyncio).
    fn unclaimed(&self) -> bool {
        self.w.contains(&SemW::Granted)
    }

    fn grant(&mut self) {
        while let Some(&i) = self.queue.front() {
            if self.n[i] > self.permits {
                break;
            }
            self.queue.pop_front();
            self.permits -= self.n[i];
            self.w[i] = SemW::Granted;
            self.wakes[i] += 1;
        }
    }
}

// ------------------------------------------------------------ Queue

#[derive(Debug, Clone)]
enum QueueOp {
    Get,
    Put,
    GetNowait,
    PutNowait,
    Poll(usize),
    PollSpent(usize),
    Drop(usize),
    Shutdown(bool),
    /// Polls every woken waiter until none is, then checks the rule.
    Settle,
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    // Shutdown is rare: it wakes everyone and so hides lost wakeups.
    prop_oneof![
        16 => Just(QueueOp::Get),
        16 => Just(QueueOp::Put),
        8 => Just(QueueOp::GetNowait),
        8 => Just(QueueOp::PutNowait),
        8 => any::<usize>().prop_map(QueueOp::Poll),
        8 => any::<usize>().prop_map(QueueOp::PollSpent),
        16 => any::<usize>().prop_map(QueueOp::Drop),
        8 => Just(QueueOp::Settle),
        1 => any::<bool>().prop_map(QueueOp::Shutdown),
    ]
}

enum QueueW<'a> {
    Getter(Probe<Get<'a, u32>>),
    Putter(Probe<Put<'a, u32>>, u32),
}

proptest! {
    // Hand-polled, cheap cases: eight times as many.
    #![proptest_config(ProptestConfig::with_cases(cases() * 8))]

    #[test]
    fn condition_notifications_follow_the_model(
        n in 1usize..5,
        ops in prop::collection::vec(cond_op(), 0..40),
    ) {
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            let m = Mutex::new(0u32);
            let cond = Condition::new();
            let mut model = CondModel {
                w: Vec::new(),
                wakes: Vec::new(),
                cond: VecDeque::new(),
                holder: Holder::Free,
                lock_q: VecDeque::new(),
            };
            let mut ws = Vec::new();
            for _ in 0..n {
                let mut w = Probe::new(cond.wait(m.try_lock().unwrap()));
                assert!(w.poll().is_pending());
                ws.push(w);
                model.push();
            }
            let mut producer = None;
            let live = |model: &CondModel, i: usize| {
                let i = i % model.w.len();
                (model.w[i] != CondW::Gone).then_some(i)
            };
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    // Notifying takes the lock: the producer's, or the free
                    // lock for the call; with a waiter holding it, no notify.
                    CondOp::Notify(k) => {
                        let own = m.try_lock().ok();
                        if let Some(g) = producer.as_ref().or(own.as_ref()) {
                            assert_eq!(cond.notify(g, k), model.notify(k, true));
                        }
                    }
                    CondOp::NotifyAll => {
                        let own = m.try_lock().ok();
                        if let Some(g) = producer.as_ref().or(own.as_ref()) {
                            assert_eq!(cond.notify_all(g), model.notify(usize::MAX, false));
                        }
                    }
                    CondOp::Poll(i) => {
                        if let Some(i) = live(&model, i) {
                            let ready = ws[i].poll().is_ready(); // the guard drops here
                            assert_eq!(ready, model.poll(i), "step {step}: {op:?}");
                        }
                    }
                    CondOp::PollSpent(i) => {
                        if let Some(i) = live(&model, i) {
                            assert!(ws[i].poll_with_budget_spent().await.is_pending());
                            model.poll_spent(i);
                        }
                    }
                    CondOp::Drop(i) => {
                        if let Some(i) = live(&model, i) {
                            ws[i].cancel();
                            model.drop(i);
                        }
                    }
                    CondOp::Lock => {
                        if model.holder == Holder::Free {
                            producer = Some(m.try_lock().expect("the model says free"));
                            model.holder = Holder::Producer;
                        } else {
                            assert!(m.try_lock().is_err());
                        }
                    }
                    CondOp::Unlock => {
                        if model.holder == Holder::Producer {
                            producer = None;
                            model.unlock();
                        }
                    }
                    CondOp::NewWaiter => {
                        let g = match model.holder {
                            Holder::Producer => producer.take().unwrap(),
                            Holder::Free => m.try_lock().expect("the model says free"),
                            Holder::Waiter(_) => continue,
                        };
                        model.holder = Holder::Producer;
                        let mut w = Probe::new(cond.wait(g));
                        assert!(w.poll().is_pending());
                        ws.push(w);
                        model.push();
                        model.unlock(); // wait released the lock
                    }
                }
                let wakes: Vec<usize> = ws.iter().map(|w| w.wakes()).collect();
                assert_eq!(wakes, model.wakes, "step {step}: {op:?} in {model:?}");
                assert_eq!(cond.waiters(), model.cond.len(), "step {step}");
                assert_eq!(m.is_locked(), model.holder != Holder::Free, "step {step}");
                for (i, w) in ws.iter().enumerate() {
                    assert_eq!(w.is_live(), model.w[i] != CondW::Gone, "step {step}: {i}");
                }
            }
            // Everyone still waiting gets the lock in the end.
            if producer.take().is_some() {
                model.unlock();
            }
            for _ in 0..=ws.len() {
                if let Ok(g) = m.try_lock() {
                    cond.notify_all(&g);
                    model.notify(usize::MAX, false);
                }
                for (i, w) in ws.iter_mut().enumerate() {
                    if w.is_live() {
                        assert_eq!(w.poll().is_ready(), model.poll(i));
                    }
                }
            }
            assert!(ws.iter().all(|w| !w.is_live()), "{model:?}");
            assert!(!m.is_locked());
            assert_eq!(cond.waiters(), 0);
        });
    }

    #[test]
    fn semaphore_hand_offs_follow_the_model(
        initial in 0usize..3,
        ops in prop::collection::vec(sem_op(), 0..50),
    ) {
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            let sem = Semaphore::new(initial);
            let mut total = initial;
            let mut model = SemModel {
                permits: initial,
                closed: false,
                queue: VecDeque::new(),
                n: Vec::new(),
                w: Vec::new(),
                wakes: Vec::new(),
            };
            let mut ws = Vec::new();
            let mut held: Vec<Option<SemaphorePermit<'_>>> = Vec::new();
            let pick = |model: &SemModel, i: usize| (!model.w.is_empty()).then(|| i % model.w.len());
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    SemOp::Acquire(n) => {
                        let i = ws.len();
                        model.n.push(n);
                        model.wakes.push(0);
                        held.push(None);
                        let mut w = Probe::new(sem.acquire_many(n));
                        let r = w.poll();
                        ws.push(w);
                        if model.closed {
                            assert!(matches!(r, Poll::Ready(Err(_))));
                            model.w.push(SemW::Gone);
                        } else if model.queue.is_empty() && !model.unclaimed() && model.permits >= n {
                            let Poll::Ready(Ok(p)) = r else { panic!("step {step}") };
                            model.permits -= n;
                            held[i] = Some(p);
                            model.w.push(SemW::Held);
                        } else {
                            assert!(r.is_pending(), "step {step}");
                            model.queue.push_back(i);
                            model.w.push(SemW::Queued);
                        }
                    }
                    SemOp::AddPermits(k) => {
                        sem.add_permits(k);
                        total += k;
                        model.permits += k;
                        model.grant();
                    }
                    SemOp::Release(i) => {
                        if let Some(i) = pick(&model, i)
                            && model.w[i] == SemW::Held
                        {
                            held[i] = None;
                            model.w[i] = SemW::Gone;
                            model.permits += model.n[i];
                            model.grant();
                        }
                    }
                    SemOp::Poll(i) => {
                        if let Some(i) = pick(&model, i) {
                            match model.w[i] {
                                SemW::Queued => assert!(ws[i].poll().is_pending()),
                                SemW::Granted => {
                                    let Poll::Ready(Ok(p)) = ws[i].poll() else {
                                        panic!("step {step}: granted")
                                    };
                                    assert_eq!(p.num_permits(), model.n[i]);
                                    held[i] = Some(p);
                                    model.w[i] = SemW::Held;
                                    // The last hand-over taken: requests that
                                    // queued behind it get the free permits.
                                    if !model.unclaimed() && !model.closed {
                                        model.grant();
                                    }
                                }
                                SemW::Failed => {
                                    assert!(matches!(ws[i].poll(), Poll::Ready(Err(_))));
                                    model.w[i] = SemW::Gone;
                                }
                                SemW::Held | SemW::Gone => {}
                            }
                        }
                    }
                    SemOp::PollSpent(i) => {
                        if let Some(i) = pick(&model, i)
                            && matches!(model.w[i], SemW::Queued | SemW::Granted | SemW::Failed)
                        {
                            assert!(ws[i].poll_with_budget_spent().await.is_pending());
                        }
                    }
                    SemOp::Drop(i) => {
                        if let Some(i) = pick(&model, i)
                            && matches!(model.w[i], SemW::Queued | SemW::Granted | SemW::Failed)
                        {
                            ws[i].cancel();
                            match model.w[i] {
                                SemW::Queued => model.queue.retain(|&j| j != i),
                                SemW::Granted => model.permits += model.n[i],
                                _ => {}
                            }
                            model.w[i] = SemW::Gone;
                            if !model.closed {
                                model.grant();
                            }
                        }
                    }
                    SemOp::Close => {
                        sem.close();
                        model.closed = true;
                        for i in std::mem::take(&mut model.queue) {
                            model.w[i] = SemW::Failed;
                            model.wakes[i] += 1;
                        }
                    }
                }
                let wakes: Vec<usize> = ws.iter().map(|w| w.wakes()).collect();
                assert_eq!(wakes, model.wakes, "step {step}: {op:?} in {model:?}");
                assert_eq!(sem.available_permits(), model.permits, "step {step}: {op:?}");
                assert_eq!(sem.is_closed(), model.closed);
            }
            drop(held);
            drop(ws);
            assert_eq!(sem.available_permits(), total, "every permit came back");
        });
    }

    #[test]
    fn queue_waiters_never_wait_beside_an_item_or_a_slot(
        maxsize in prop_oneof![4 => 1usize..=2, 1 => Just(0usize)],
        ops in prop::collection::vec(queue_op(), 0..40),
    ) {
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            let q = Queue::new(maxsize);
            let mut ws: Vec<Option<QueueW<'_>>> = Vec::new();
            // The wake count each waiter had when last polled.
            let mut seen: Vec<usize> = Vec::new();
            let mut next = 0u32;
            let mut put: Vec<u32> = Vec::new();
            let mut taken: Vec<u32> = Vec::new();
            let mut discarded = 0usize;
            // Polls a waiter once; records what it put or took.
            let poll = |w: &mut Option<QueueW<'_>>, put: &mut Vec<u32>, taken: &mut Vec<u32>| {
                let done = match w.as_mut().expect("live") {
                    QueueW::Getter(p) => match p.poll() {
                        Poll::Ready(Ok(v)) => {
                            taken.push(v);
                            true
                        }
                        Poll::Ready(Err(_)) => true,
                        Poll::Pending => false,
                    },
                    QueueW::Putter(p, v) => match p.poll() {
                        Poll::Ready(Ok(())) => {
                            put.push(*v);
                            true
                        }
                        Poll::Ready(Err(_)) => true,
                        Poll::Pending => false,
                    },
                };
                if done {
                    *w = None;
                }
            };
            let wakes = |w: &QueueW<'_>| match w {
                QueueW::Getter(p) => p.wakes(),
                QueueW::Putter(p, _) => p.wakes(),
            };
            let live = |ws: &Vec<Option<QueueW<'_>>>| {
                ws.iter()
                    .enumerate()
                    .filter(|(_, w)| w.is_some())
                    .map(|(i, _)| i)
                    .collect::<Vec<_>>()
                    .into_iter()
            };
            let n_ops = ops.len();
            for (step, op) in ops.iter().chain([&QueueOp::Settle]).enumerate() {
                match *op {
                    QueueOp::Get | QueueOp::Put => {
                        let w = if let QueueOp::Get = op {
                            QueueW::Getter(Probe::new(q.get()))
                        } else {
                            next += 1;
                            QueueW::Putter(Probe::new(q.put(next)), next)
                        };
                        ws.push(Some(w));
                        seen.push(0);
                        poll(ws.last_mut().unwrap(), &mut put, &mut taken);
                    }
                    QueueOp::GetNowait => {
                        if let Ok(v) = q.get_nowait() {
                            taken.push(v);
                        }
                    }
                    QueueOp::PutNowait => {
                        next += 1;
                        if q.put_nowait(next).is_ok() {
                            put.push(next);
                        }
                    }
                    QueueOp::Poll(i) if live(&ws).next().is_some() => {
                        let i = live(&ws).nth(i % live(&ws).count()).unwrap();
                        if let Some(w) = &ws[i] {
                            seen[i] = wakes(w);
                            poll(&mut ws[i], &mut put, &mut taken);
                        }
                    }
                    QueueOp::PollSpent(i) if live(&ws).next().is_some() => {
                        let i = live(&ws).nth(i % live(&ws).count()).unwrap();
                        let pending = match &mut ws[i] {
                            Some(QueueW::Getter(p)) => p.poll_with_budget_spent().await.is_pending(),
                            Some(QueueW::Putter(p, _)) => p.poll_with_budget_spent().await.is_pending(),
                            None => true,
                        };
                        assert!(pending, "step {step}");
                    }
                    QueueOp::Drop(i) if live(&ws).next().is_some() => {
                        let i = live(&ws).nth(i % live(&ws).count()).unwrap();
                        ws[i] = None;
                    }
                    QueueOp::Shutdown(immediate) => {
                        if immediate {
                            discarded += q.qsize();
                        }
                        q.shutdown(immediate);
                    }
                    QueueOp::Settle => {
                        // Poll every waiter woken since its last poll, until
                        // none is. A waiter never woken is not polled, so a
                        // lost wakeup leaves it waiting and fails the rule.
                        let mut rounds = 0;
                        loop {
                            let mut progress = false;
                            for i in 0..ws.len() {
                                let Some(w) = &ws[i] else { continue };
                                if wakes(w) == seen[i] {
                                    continue;
                                }
                                seen[i] = wakes(w);
                                progress = true;
                                poll(&mut ws[i], &mut put, &mut taken);
                            }
                            if !progress {
                                break;
                            }
                            rounds += 1;
                            assert!(rounds < 1000, "step {step}: no fixpoint");
                        }
                        let count = |getter: bool| {
                            ws.iter()
                                .flatten()
                                .filter(|w| matches!(w, QueueW::Getter(_)) == getter)
                                .count()
                        };
                        let (getters, putters) = (count(true), count(false));
                        let at = if step == n_ops { "end" } else { "step" };
                        if q.is_shutdown() {
                            assert_eq!(getters + putters, 0, "{at} {step}: a waiter outlived shutdown");
                        }
                        assert!(
                            getters == 0 || q.qsize() == 0,
                            "{at} {step}: {getters} getter(s) wait beside {} item(s)",
                            q.qsize()
                        );
                        assert!(
                            putters == 0 || q.full(),
                            "{at} {step}: {putters} putter(s) wait beside a free slot"
                        );
                    }
                    _ => {}
                }
                assert_eq!(q.qsize() + taken.len() + discarded, put.len(), "step {step}");
            }
            drop(ws);
            assert_eq!(q.unfinished_tasks(), put.len() - discarded);
            while let Ok(v) = q.get_nowait() {
                taken.push(v);
            }
            let mut taken_sorted = taken.clone();
            taken_sorted.sort();
            taken_sorted.dedup();
            assert_eq!(taken_sorted.len(), taken.len(), "an item came out twice");
            assert!(taken.iter().all(|v| put.contains(v)), "an item came out that was never put");
            assert_eq!(taken.len() + discarded, put.len(), "an item was lost");
        });
    }
}
