//! Send / Sync table of the queue and sync types.

use std::rc::Rc;

use static_assertions::{assert_impl_all, assert_not_impl_any};

use coil::queue::{GetNowaitError, LifoQueue, PriorityQueue, PutNowaitError, Queue, QueueShutDown};
use coil::sync::{
    AcquireError, Barrier, BrokenBarrier, Condition, Event, Mutex, OwnedSemaphorePermit, RwLock,
    Semaphore, TryAcquireError, TryLockError, broadcast, mpsc, oneshot, watch,
};

// Channels cross threads.
assert_impl_all!(mpsc::Sender<u8>: Send, Sync, Clone, Unpin);
assert_impl_all!(mpsc::UnboundedSender<u8>: Send, Sync, Clone, Unpin);
assert_impl_all!(mpsc::Receiver<u8>: Send, Sync, Unpin);
assert_not_impl_any!(mpsc::Sender<Rc<u8>>: Send, Sync);
// The receiver's batch (`mpsc.rs`) keeps these as they were: shared only
// for `T: Send` (its values are reached through `&mut` only).
assert_impl_all!(mpsc::Receiver<std::cell::Cell<u8>>: Send, Sync);
assert_not_impl_any!(mpsc::Receiver<Rc<u8>>: Send, Sync);
assert_impl_all!(oneshot::Sender<u8>: Send, Sync, Unpin);
assert_impl_all!(oneshot::Receiver<u8>: Send, Sync, Unpin);
assert_impl_all!(mpsc::SendError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(mpsc::TrySendError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(mpsc::TryRecvError: Send, Sync, std::error::Error);
assert_impl_all!(oneshot::RecvError: Send, Sync, std::error::Error);
assert_impl_all!(broadcast::Sender<u8>: Send, Sync, Clone, Unpin);
assert_impl_all!(broadcast::Receiver<u8>: Send, Sync, Unpin);
assert_not_impl_any!(broadcast::Receiver<u8>: Clone);
assert_not_impl_any!(broadcast::Sender<Rc<u8>>: Send, Sync);
assert_impl_all!(broadcast::Recv<'static, u8>: Send, Sync, Unpin);
assert_impl_all!(broadcast::SendError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(broadcast::RecvError: Send, Sync, Copy, std::error::Error);
assert_impl_all!(broadcast::TryRecvError: Send, Sync, Copy, std::error::Error);
assert_impl_all!(watch::Sender<u8>: Send, Sync, Clone, Unpin);
assert_impl_all!(watch::Receiver<u8>: Send, Sync, Clone, Unpin);
assert_not_impl_any!(watch::Receiver<Rc<u8>>: Send, Sync);
assert_impl_all!(watch::Changed<'static, u8>: Send, Sync, Unpin);
assert_not_impl_any!(watch::Ref<'static, u8>: Send);
assert_impl_all!(watch::SendError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(watch::RecvError: Send, Sync, Copy, std::error::Error);
// Single-loop primitives: movable with their data, never shared across threads.
assert_impl_all!(Mutex<u8>: Send);
assert_not_impl_any!(Mutex<u8>: Sync);
assert_impl_all!(RwLock<u8>: Send);
assert_not_impl_any!(RwLock<u8>: Sync);
assert_impl_all!(Semaphore: Send);
assert_not_impl_any!(Semaphore: Sync);
assert_not_impl_any!(Event: Sync);
assert_not_impl_any!(Condition: Sync);
assert_not_impl_any!(Barrier: Sync);
assert_impl_all!(Barrier: Send);
assert_impl_all!(BrokenBarrier: Send, Sync, Copy, std::error::Error);
assert_not_impl_any!(OwnedSemaphorePermit: Send, Sync);
// Queues are Rc handles.
assert_impl_all!(Queue<u8>: Clone, Unpin);
assert_not_impl_any!(Queue<u8>: Send, Sync);
assert_not_impl_any!(LifoQueue<u8>: Send, Sync);
assert_not_impl_any!(PriorityQueue<u8>: Send, Sync);
// Errors.
assert_impl_all!(QueueShutDown: Send, Sync, Copy, std::error::Error);
assert_impl_all!(PutNowaitError<u8>: Send, Sync, std::error::Error);
assert_impl_all!(GetNowaitError: Send, Sync, Copy, std::error::Error);
assert_impl_all!(AcquireError: Send, Sync, std::error::Error);
assert_impl_all!(TryAcquireError: Send, Sync, std::error::Error);
assert_impl_all!(TryLockError: Send, Sync, std::error::Error);
