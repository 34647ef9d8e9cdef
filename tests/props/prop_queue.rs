//! Queue / LifoQueue / PriorityQueue against VecDeque / Vec /
//! BinaryHeap<Reverse> models: items, errors, qsize/full, task_done and
//! join counts, shutdown(immediate). `PROPTEST_CASES` sets the case count
//! (default 64).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use coil::queue::{GetNowaitError, LifoQueue, PriorityQueue, PutNowaitError, Queue};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8),
    Get,
    TaskDone,
    Shutdown(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Put),
        5 => Just(Op::Get),
        3 => Just(Op::TaskDone),
        1 => any::<bool>().prop_map(Op::Shutdown),
    ]
}

enum Model {
    Fifo(VecDeque<u8>),
    Lifo(Vec<u8>),
    Heap(BinaryHeap<Reverse<u8>>),
}

impl Model {
    fn push(&mut self, x: u8) {
        match self {
            Model::Fifo(v) => v.push_back(x),
            Model::Lifo(v) => v.push(x),
            Model::Heap(v) => v.push(Reverse(x)),
        }
    }
    fn pop(&mut self) -> Option<u8> {
        match self {
            Model::Fifo(v) => v.pop_front(),
            Model::Lifo(v) => v.pop(),
            Model::Heap(v) => v.pop().map(|r| r.0),
        }
    }
    fn len(&self) -> usize {
        match self {
            Model::Fifo(v) => v.len(),
            Model::Lifo(v) => v.len(),
            Model::Heap(v) => v.len(),
        }
    }
}

/// The three queue kinds behind one interface for the test.
macro_rules! check_against_model {
    ($q:expr, $model:expr, $maxsize:expr, $ops:expr) => {{
        let q = $q;
        let mut model = $model;
        let (mut unfinished, mut shut) = (0usize, false);
        for op in $ops {
            match op {
                Op::Put(x) => {
                    let r = q.put_nowait(x);
                    if shut {
                        prop_assert!(matches!(r, Err(PutNowaitError::ShutDown(y)) if y == x));
                    } else if $maxsize > 0 && model.len() >= $maxsize {
                        prop_assert!(matches!(r, Err(PutNowaitError::Full(y)) if y == x));
                    } else {
                        prop_assert!(r.is_ok());
                        model.push(x);
                        unfinished += 1;
                    }
                }
                Op::Get => {
                    let want = match model.pop() {
                        Some(x) => Ok(x),
                        None if shut => Err(GetNowaitError::ShutDown),
                        None => Err(GetNowaitError::Empty),
                    };
                    prop_assert_eq!(q.get_nowait(), want);
                }
                Op::TaskDone => {
                    prop_assert_eq!(q.task_done().is_ok(), unfinished > 0);
                    unfinished = unfinished.saturating_sub(1);
                }
                Op::Shutdown(immediate) => {
                    q.shutdown(immediate);
                    shut = true;
                    if immediate {
                        while model.pop().is_some() {
                            unfinished = unfinished.saturating_sub(1);
                        }
                    }
                }
            }
            prop_assert_eq!(q.qsize(), model.len());
            prop_assert_eq!(q.empty(), model.len() == 0);
            prop_assert_eq!(q.full(), $maxsize > 0 && model.len() >= $maxsize);
            prop_assert_eq!(q.unfinished_tasks(), unfinished);
            prop_assert_eq!(q.is_shutdown(), shut);
            let mut join = pin!(q.join());
            let ready = join.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready();
            prop_assert_eq!(ready, unfinished == 0);
        }
    }};
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
    fn fifo_matches_vecdeque(maxsize in 0usize..5, ops in prop::collection::vec(op(), 0..200)) {
        check_against_model!(Queue::new(maxsize), Model::Fifo(VecDeque::new()), maxsize, ops);
    }

    #[test]
    fn lifo_matches_vec(maxsize in 0usize..5, ops in prop::collection::vec(op(), 0..200)) {
        check_against_model!(LifoQueue::new(maxsize), Model::Lifo(Vec::new()), maxsize, ops);
    }

    #[test]
    fn priority_matches_binary_heap(maxsize in 0usize..8, ops in prop::collection::vec(op(), 0..200)) {
        check_against_model!(PriorityQueue::new(maxsize), Model::Heap(BinaryHeap::new()), maxsize, ops);
    }

    /// Blocked getters and putters (polled by hand) against the model: every
    /// item put is taken exactly once, in FIFO order, whatever waiters are
    /// dropped along the way.
    #[test]
    fn waiters_with_drops_lose_nothing(
        maxsize in 1usize..4,
        script in prop::collection::vec((0u8..5, any::<u8>()), 0..150),
    ) {
        let q = Queue::new(maxsize);
        let mut getters: Vec<std::pin::Pin<Box<coil::queue::Get<'_, u8>>>> = Vec::new();
        let mut putters: Vec<(u8, std::pin::Pin<Box<coil::queue::Put<'_, u8>>>)> = Vec::new();
        let mut sent: Vec<u8> = Vec::new();
        let mut got: Vec<u8> = Vec::new();
        let cx = &mut Context::from_waker(Waker::noop());
        for (action, x) in script {
            match action {
                0 => {
                    let mut g = Box::pin(q.get());
                    match g.as_mut().poll(cx) {
                        Poll::Ready(r) => got.push(r.unwrap()),
                        Poll::Pending => getters.push(g),
                    }
                }
                1 => {
                    let mut p = Box::pin(q.put(x));
                    match p.as_mut().poll(cx) {
                        Poll::Ready(r) => { r.unwrap(); sent.push(x) }
                        Poll::Pending => putters.push((x, p)),
                    }
                }
                2 if !getters.is_empty() => { drop(getters.remove(x as usize % getters.len())); }
                3 if !putters.is_empty() => { drop(putters.remove(x as usize % putters.len())); }
                _ => {
                    // Poll every waiter once, in the order they wait.
                    getters.retain_mut(|g| match g.as_mut().poll(cx) {
                        Poll::Ready(r) => { got.push(r.unwrap()); false }
                        Poll::Pending => true,
                    });
                    putters.retain_mut(|(x, p)| match p.as_mut().poll(cx) {
                        Poll::Ready(r) => { r.unwrap(); sent.push(*x); false }
                        Poll::Pending => true,
                    });
                }
            }
            prop_assert!(q.qsize() <= maxsize);
        }
        // Quiesce: poll everyone until nothing changes.
        loop {
            let before = (getters.len(), putters.len());
            getters.retain_mut(|g| match g.as_mut().poll(cx) {
                Poll::Ready(r) => { got.push(r.unwrap()); false }
                Poll::Pending => true,
            });
            putters.retain_mut(|(x, p)| match p.as_mut().poll(cx) {
                Poll::Ready(r) => { r.unwrap(); sent.push(*x); false }
                Poll::Pending => true,
            });
            if (getters.len(), putters.len()) == before { break; }
        }
        prop_assert!(getters.is_empty() || q.qsize() == 0, "a getter waits beside an item");
        prop_assert!(putters.is_empty() || q.full(), "a putter waits beside a free slot");
        drop(getters);
        drop(putters);
        while let Ok(x) = q.get_nowait() { got.push(x); }
        prop_assert_eq!(got.len(), sent.len());
        prop_assert_eq!(q.unfinished_tasks(), sent.len());
    }
}
