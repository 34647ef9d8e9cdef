//! Queues between tasks of one loop: `asyncio.Queue`, `LifoQueue` and
//! `PriorityQueue`.
//!
//! A queue is a cheap [`Clone`] handle (an `Rc` inside): clone it into every
//! producer and consumer task. Queues are single-loop (`!Send`); between
//! threads use [`sync::mpsc`](crate::sync::mpsc).
//!
//! | asyncio | coil |
//! |---|---|
//! | `Queue(maxsize=0)` | [`Queue::new(0)`](Queue::new) (0 = unbounded) |
//! | `await q.put(x)` / `q.put_nowait(x)` | [`put(x).await`](Queue::put) / [`put_nowait(x)`](Queue::put_nowait) |
//! | `await q.get()` / `q.get_nowait()` | [`get().await`](Queue::get) / [`get_nowait()`](Queue::get_nowait) |
//! | `q.task_done()`, `await q.join()` | [`task_done()`](Queue::task_done), [`join().await`](Queue::join) |
//! | `q.qsize()`, `empty()`, `full()`, `maxsize` | the same names |
//! | `q.shutdown(immediate=False)` (3.13) | [`shutdown(immediate)`](Queue::shutdown) |
//! | `QueueFull`, `QueueEmpty`, `QueueShutDown` | [`PutNowaitError::Full`], [`GetNowaitError::Empty`], [`QueueShutDown`] |
//!
//! Semantics follow asyncio 3.13:
//! * `put` waits while the queue is full; `get` waits while it is empty.
//!   Waiters are served first come, first served; a waiter whose future is
//!   dropped leaves the line, and a wakeup that was meant for it goes to the
//!   next one.
//! * Every successful put counts one *unfinished task*; [`task_done`](Queue::task_done)
//!   uncounts one, and [`join`](Queue::join) waits until the count is zero.
//! * After [`shutdown`](Queue::shutdown), `put` and `put_nowait` fail with
//!   the item given back; `get` keeps returning the queued items and then
//!   fails. `shutdown(true)` also discards the queued items, counting each
//!   as done, so `join` returns. Blocked putters and getters are woken with
//!   the error.
//!
//! ```
//! use coil::queue::Queue;
//!
//! let total = coil::run(async {
//!     let q = Queue::new(4);
//!     let consumer = coil::spawn({
//!         let q = q.clone();
//!         async move {
//!             let mut sum = 0;
//!             while let Ok(x) = q.get().await {
//!                 sum += x;
//!                 q.task_done().unwrap();
//!             }
//!             sum
//!         }
//!     });
//!     for i in 1..=10 {
//!         q.put(i).await.unwrap(); // waits while 4 items are queued
//!     }
//!     q.join().await; // every item was taken and marked done
//!     q.shutdown(false); // the consumer's next get fails: it returns
//!     consumer.await.unwrap()
//! });
//! assert_eq!(total, 55);
//! ```

mod core;
mod error;
mod ring;

use std::fmt;
use std::rc::Rc;

use self::core::{Core, Kind};
pub use self::core::{Get, Join, Put};
pub use self::error::{GetNowaitError, PutNowaitError, QueueShutDown, TaskDoneError};

macro_rules! queue_methods {
    ($name:ident, $order:literal) => {
        impl<T> $name<T> {
            /// Items queued right now.
            pub fn qsize(&self) -> usize {
                self.core.qsize()
            }

            /// Whether no item is queued.
            pub fn empty(&self) -> bool {
                self.qsize() == 0
            }

            /// Whether `maxsize` items are queued (never, if unbounded).
            pub fn full(&self) -> bool {
                self.core.full()
            }

            /// The bound given to `new` (0 = unbounded).
            pub fn maxsize(&self) -> usize {
                self.core.maxsize()
            }

            /// Items put and not yet marked done with `task_done`.
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished()
            }

            /// Whether `shutdown` was called.
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }

            #[doc = concat!("Puts `item`, waiting while the queue is full. The item goes ", $order, ".")]
            ///
            /// Fails with the item given back if the queue is (or gets) shut
            /// down. Cancel safe: if the future is dropped before it
            /// completes, the item was not put (it is dropped with the
            /// future), and a free slot announced to it goes to the next
            /// putter.
            pub fn put(&self, item: T) -> Put<'_, T> {
                Put {
                    core: &self.core,
                    item: Some(item),
                    key: None,
                }
            }

            /// Puts `item` if there is room, without waiting.
            pub fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
                self.core.put_nowait(item)
            }

            /// Takes an item, waiting while the queue is empty.
            ///
            /// Fails with [`QueueShutDown`] once the queue is shut down and
            /// empty. Cancel safe: a dropped `get` took nothing, and an item
            /// announced to it goes to the next getter.
            pub fn get(&self) -> Get<'_, T> {
                Get {
                    core: &self.core,
                    key: None,
                }
            }

            /// Takes an item if one is queued, without waiting.
            pub fn get_nowait(&self) -> Result<T, GetNowaitError> {
                self.core.get_nowait()
            }

            /// Marks one item taken with `get` as processed; when every item
            /// put so far is done, `join` returns.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`] if called more times than items were put
            /// (asyncio raises `ValueError`); nothing changes then.
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.core.task_done()
            }

            /// Waits until every item put so far has been marked done.
            pub fn join(&self) -> Join<'_, T> {
                Join {
                    core: &self.core,
                    key: None,
                }
            }

            /// Shuts the queue down (asyncio 3.13): later puts fail, gets
            /// fail once the queue is empty, and blocked putters and getters
            /// wake with the error. With `immediate`, the queued items are
            /// dropped and counted as done, so `join` returns.
            pub fn shutdown(&self, immediate: bool) {
                self.core.shutdown(immediate)
            }
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    core: self.core.clone(),
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("qsize", &self.qsize())
                    .field("maxsize", &self.maxsize())
                    .field("unfinished", &self.unfinished_tasks())
                    .field("shutdown", &self.is_shutdown())
                    .finish()
            }
        }
    };
}

/// A first-in, first-out queue: `asyncio.Queue`. See the [module docs](self).
pub struct Queue<T> {
    core: Rc<Core<T>>,
}

impl<T> Queue<T> {
    /// A queue holding at most `maxsize` items (0 = unbounded).
    pub fn new(maxsize: usize) -> Queue<T> {
        Queue {
            core: Rc::new(Core::new(maxsize, Kind::Fifo)),
        }
    }
}

impl<T> Default for Queue<T> {
    /// An unbounded queue.
    fn default() -> Self {
        Queue::new(0)
    }
}

queue_methods!(Queue, "to the back; `get` takes from the front");

/// A last-in, first-out queue (a stack): `asyncio.LifoQueue`.
///
/// ```
/// coil::run(async {
///     let q = coil::queue::LifoQueue::new(0);
///     for i in 0..3 {
///         q.put_nowait(i).unwrap();
///     }
///     assert_eq!(q.get().await.unwrap(), 2);
/// });
/// ```
pub struct LifoQueue<T> {
    core: Rc<Core<T>>,
}

impl<T> LifoQueue<T> {
    /// A stack holding at most `maxsize` items (0 = unbounded).
    pub fn new(maxsize: usize) -> LifoQueue<T> {
        LifoQueue {
            core: Rc::new(Core::new(maxsize, Kind::Lifo)),
        }
    }
}

queue_methods!(LifoQueue, "on top; `get` takes the most recent item");

/// A queue that hands out its smallest item first: `asyncio.PriorityQueue`
/// (a binary heap, like `heapq`). Use a tuple such as `(priority, data)` or
/// [`std::cmp::Reverse`] to choose the order. Equal items come out in no
/// particular order.
///
/// ```
/// coil::run(async {
///     let q = coil::queue::PriorityQueue::new(0);
///     for job in [(3, "low"), (1, "urgent"), (2, "normal")] {
///         q.put_nowait(job).unwrap();
///     }
///     assert_eq!(q.get().await.unwrap(), (1, "urgent"));
/// });
/// ```
pub struct PriorityQueue<T> {
    core: Rc<Core<T>>,
}

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue holding at most `maxsize` items (0 = unbounded).
    pub fn new(maxsize: usize) -> PriorityQueue<T> {
        PriorityQueue {
            core: Rc::new(Core::new(maxsize, Kind::Heap(T::cmp))),
        }
    }
}

queue_methods!(
    PriorityQueue,
    "into the heap; `get` takes the smallest item"
);
