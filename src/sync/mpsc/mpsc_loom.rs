//! Loom models of the batch protocol of `mpsc` (the design rules in
//! `mpsc.rs`): the real channel built with loom's mutex and atomics
//! (`crate::loom`), a sender thread and the receiver thread. A freed slot
//! that no sender hears of leaves a sender blocked with nobody to wake it,
//! which loom reports as a deadlock; a slot given twice shows as a value
//! too many in the buffer, which the models assert against.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p coil --lib
//! --release mpsc_loom`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::thread;

use super::{TrySendError, channel};
use crate::loom::{Parker, Unparker};

struct Unpark(Unparker);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this loom thread, parking on a model token between polls:
/// a wake that never comes is a deadlock loom reports.
fn block_on<F: Future>(fut: F) -> F::Output {
    let (parker, unparker) = Parker::new();
    let waker = Waker::from(Arc::new(Unpark(unparker)));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        parker.park();
    }
}

/// A sender blocked on a full channel of capacity 2 while the receiver
/// returns values from its batch (rule 3; with capacity 1 a batch never
/// holds a value beyond the one returned at once): every value arrives, in
/// order, and never more than `cap` are buffered.
#[test]
fn blocked_sender_hears_of_every_freed_slot() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(2);
        let t = thread::spawn(move || {
            for i in 0..4 {
                block_on(tx.send(i)).unwrap();
            }
        });
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                assert!(rx.len() <= 2, "more than cap values buffered");
                got.push(v);
            }
            got
        });
        t.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

/// Two senders on a channel of capacity 1 that is full: each is served
/// once the receiver frees a slot, and `try_send` never finds room that a
/// queued sender is owed (FIFO, rule 3 and 4).
#[test]
fn two_senders_share_the_freed_slots() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(0).unwrap();
        let tx2 = tx.clone();
        let t = thread::spawn(move || block_on(tx2.send(1)).unwrap());
        let rx_thread = thread::spawn(move || {
            block_on(async {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        });
        match tx.try_send(2) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Closed(_)) => panic!("closed while the receiver lives"),
        }
        drop(tx);
        t.join().unwrap();
        let mut got = rx_thread.join().unwrap();
        assert_eq!(got[0], 0);
        got.sort_unstable();
        assert!(got == [0, 1] || got == [0, 1, 2], "{got:?}");
    });
}

/// The receiver returns two values and then stops receiving: the sender
/// must be able to send two more without it (a slot freed from the batch is
/// free at once, rules 2 and 3), so the join below must not block.
#[test]
fn a_slot_freed_from_the_batch_needs_no_further_recv() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(2);
        tx.try_send(0).unwrap();
        tx.try_send(1).unwrap();
        let t = thread::spawn(move || {
            block_on(tx.send(2)).unwrap();
            block_on(tx.send(3)).unwrap();
        });
        assert_eq!(block_on(rx.recv()), Some(0));
        assert_eq!(block_on(rx.recv()), Some(1));
        t.join().unwrap();
        assert_eq!(rx.len(), 2);
        assert_eq!(block_on(rx.recv()), Some(2));
        assert_eq!(block_on(rx.recv()), Some(3));
        assert_eq!(block_on(rx.recv()), None);
    });
}
