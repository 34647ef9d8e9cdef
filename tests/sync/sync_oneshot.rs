//! oneshot: values, drops on either side, closed(), across threads.

use crate::support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use coil::spawn;
use coil::sync::oneshot::{self, TryRecvError};
use support::{DropCounter, counting_waker};

fn poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let (w, _) = counting_waker();
    f.poll(&mut Context::from_waker(&w))
}

#[test]
fn send_then_receive() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(5).unwrap();
    assert_eq!(poll(std::pin::Pin::new(&mut rx)), Poll::Ready(Ok(5)));
}

#[test]
fn sender_dropped_without_sending_wakes_the_receiver_with_an_error() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    let (w, c) = counting_waker();
    assert!(
        std::pin::Pin::new(&mut rx)
            .poll(&mut Context::from_waker(&w))
            .is_pending()
    );
    drop(tx);
    assert_eq!(c.wakes.load(Ordering::SeqCst), 1);
    let Poll::Ready(Err(e)) = poll(std::pin::Pin::new(&mut rx)) else {
        panic!()
    };
    assert!(e.to_string().contains("dropped without sending"));
}

#[test]
fn receiver_dropped_fails_send_and_gives_the_value_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    let back = tx.send(DropCounter(drops.clone())).unwrap_err();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn receiver_dropped_after_send_drops_the_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    assert!(tx.send(DropCounter(drops.clone())).is_ok());
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn close_wakes_closed_and_keeps_a_value_sent_before() {
    let (mut tx, mut rx) = oneshot::channel::<u8>();
    let (w, c) = counting_waker();
    let mut closed = Box::pin(tx.closed());
    assert!(
        closed
            .as_mut()
            .poll(&mut Context::from_waker(&w))
            .is_pending()
    );
    rx.close();
    assert_eq!(c.wakes.load(Ordering::SeqCst), 1);
    assert!(poll(closed.as_mut()).is_ready());
    drop(closed);
    assert!(tx.send(1).is_err());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

    let (tx, mut rx) = oneshot::channel::<u8>();
    tx.send(3).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn blocking_recv_on_a_plain_thread() {
    let (tx, rx) = oneshot::channel();
    let th = std::thread::spawn(move || rx.blocking_recv());
    tx.send("hi").unwrap();
    assert_eq!(th.join().unwrap(), Ok("hi"));
}

driver_test! {
    fn reply_from_another_thread_and_from_a_task(rt) {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            std::thread::spawn(move || tx.send(String::from("thread")).unwrap());
            assert_eq!(rx.await.unwrap(), "thread");
            let (tx, rx) = oneshot::channel();
            let t = spawn(async move { tx.send(7).unwrap() });
            assert_eq!(rx.await, Ok(7));
            t.await.unwrap();
        });
    }

    fn sender_notices_a_cancelled_requester(rt) {
        rt.block_on(async {
            let (mut tx, rx) = oneshot::channel::<u8>();
            let requester = spawn(rx);
            coil::task::yield_now().await;
            requester.cancel();
            tx.closed().await;
            assert!(tx.is_closed());
            assert!(requester.await.unwrap_err().is_cancelled());
        });
    }
}
