//! Task cells of many sizes (the slab's size classes, a boxed large cell, a
//! boxed over-aligned one) through every end a task can have: joined,
//! detached, panicked, an output whose destructor panics, left pending when
//! the loop is dropped, and freed last by a waker held on another thread.
//! The slab's own invariants (chunk counts per class) are unit tests of
//! `src/task/raw/slab.rs`; this file runs under the ASan tier.

use std::sync::mpsc;
use std::task::{Poll, Waker};

use coil::task::yield_now;

/// How a `sized` task ends.
#[derive(Clone, Copy)]
enum End {
    Return,
    Panic,
    Pend,
}

/// A future holding `N` bytes across a suspension point, then ending as
/// `end` says.
async fn sized<const N: usize>(tag: u8, end: End) -> [u8; N] {
    let bytes = [tag; N];
    yield_now().await;
    match end {
        End::Return => {}
        End::Panic => panic!("a task of {N} bytes panics"),
        End::Pend => std::future::pending::<()>().await,
    }
    bytes
}

/// An output whose destructor panics (for a detached task).
struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("an output's destructor panics");
    }
}

/// On the default driver (`COIL_DRIVER` picks it): the test drops the
/// runtime itself, before the thread holding a waker lets it go.
#[test]
fn cells_of_many_sizes_outlive_their_loop() {
    let (wake_tx, wake_rx) = mpsc::channel::<Waker>();
    let holder = std::thread::spawn(move || wake_rx.into_iter().collect::<Vec<_>>());
    let rt = coil::Runtime::new().unwrap();
    rt.block_on(async move {
        assert_eq!(coil::spawn(sized::<1>(1, End::Return)).await.unwrap(), [1]);
        assert_eq!(
            coil::spawn(sized::<100>(2, End::Return)).await.unwrap()[99],
            2
        );
        assert_eq!(
            coil::spawn(sized::<420>(3, End::Return)).await.unwrap()[419],
            3
        );
        // Past the slab's largest class: boxed.
        assert_eq!(
            coil::spawn(sized::<700>(4, End::Return)).await.unwrap()[699],
            4
        );
        // Boxed for its alignment.
        #[repr(align(16))]
        struct Wide(u8);
        assert_eq!(coil::spawn(async { Wide(5) }).await.unwrap().0, 5);
        assert!(coil::spawn(sized::<420>(6, End::Panic)).await.is_err());
        drop(coil::spawn(sized::<100>(7, End::Panic)));
        drop(coil::spawn(async { PanicOnDrop }));
        // Left pending when the loop is dropped; one's waker is held by
        // another thread, which frees that cell last.
        drop(coil::spawn(sized::<420>(8, End::Pend)));
        let pending = coil::spawn(sized::<100>(9, End::Pend));
        let tx = wake_tx;
        drop(coil::spawn(async move {
            std::future::poll_fn(|cx| {
                tx.send(cx.waker().clone()).unwrap();
                Poll::Ready(())
            })
            .await;
            std::future::pending::<()>().await
        }));
        for _ in 0..4 {
            yield_now().await;
        }
        drop(pending);
    });
    drop(rt);
    // The last waker, dropped by the holder after the loop is gone, frees
    // its task's cell on that thread.
    assert_eq!(holder.join().unwrap().len(), 1);
}
