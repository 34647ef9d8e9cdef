//! Registered (fixed) buffers (`coil::io::FixedBufPool`, `src/io/fixed.rs`)
//! with `coil::fs::File` under every driver: fixed I/O on the pool's own
//! loop, plain I/O with the same results elsewhere (epoll, another loop), a
//! read dropped in flight keeping its buffer out of the pool until the
//! kernel is done, entries of dropped pools released and reused, and a
//! registration refused by `RLIMIT_MEMLOCK` reported with its errno.

use crate::support;
use support::TempDir;

use coil::fs::{self, File, OpenOptions};
use coil::io::{BufResult, FixedBuf, FixedBufPool};
use coil::runtime::{DriverChoice, DriverKind};
use std::future::Future;

/// Deterministic content: 4 KiB blocks, byte i = (i * 7 + i / 4096) as u8.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

const BLOCK: usize = 4096;

/// A 16-block file with [`pattern`], opened read-write.
async fn pattern_file(dir: &TempDir) -> File {
    let p = dir.path("f");
    fs::write(&p, pattern(16 * BLOCK)).await.unwrap();
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .await
        .unwrap()
}

/// Reads block `block` into `buf` (emptied first) and checks it.
async fn read_block(f: &File, mut buf: FixedBuf, block: usize) -> FixedBuf {
    buf.clear();
    let BufResult(res, buf) = f.read_exact_at(buf, (block * BLOCK) as u64).await;
    res.unwrap();
    let want = pattern(16 * BLOCK);
    assert_eq!(
        &buf[..],
        &want[block * BLOCK..(block + 1) * BLOCK],
        "block {block}"
    );
    buf
}

driver_test! {
    fn fixed_buffers_read_and_write_files(rt) {
        let dir = TempDir::new("fs-fixed-rw");
        let uring = rt.driver().kind() == DriverKind::Uring;
        rt.block_on(async {
            let f = std::rc::Rc::new(pattern_file(&dir).await);
            let pool = FixedBufPool::new(4, BLOCK).unwrap();
            assert_eq!(pool.is_registered(), uring, "registered only on io_uring");
            assert_eq!((pool.count(), pool.buf_size(), pool.available()), (4, BLOCK, 4));
            // Reads (fixed on io_uring), from several tasks at once.
            let mut tasks = Vec::new();
            for t in 0..4 {
                let (f, buf) = (f.clone(), pool.try_take().unwrap());
                tasks.push(coil::spawn(async move {
                    let mut buf = buf;
                    for block in (t..16).step_by(4) {
                        buf = read_block(&f, buf, block).await;
                    }
                }));
            }
            assert!(pool.try_take().is_none());
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(pool.available(), 4, "every buffer back after its task");
            // A short read (`read_at`) and a write of a filled buffer
            // (`write_all_at`, through a `Slice` after a short write).
            let BufResult(n, buf) = f.read_at(pool.try_take().unwrap().limit(10), 15 * BLOCK as u64 + 4090).await;
            assert_eq!((n.unwrap(), &buf[..]), (6, &pattern(16 * BLOCK)[16 * BLOCK - 6..]));
            let mut out = pool.try_take().unwrap();
            out.extend_from_slice(b"written from a fixed buffer");
            let BufResult(r, out) = f.write_all_at(out, 100).await;
            r.unwrap();
            let BufResult(r, back) = f.read_exact_at(pool.try_take().unwrap().limit(out.len()), 100).await;
            r.unwrap();
            assert_eq!(&back[..], &out[..]);
            drop((buf, out, back));
            assert_eq!(pool.available(), 4);
        });
    }

    fn a_fixed_buffer_on_another_loop_reads_plainly(rt) {
        // The pool belongs to `rt`'s loop; `other` has a pool of its own at
        // the same entry index of its own ring. Were the buffer's entry named
        // on `other`, the kernel would refuse (EFAULT: the address is outside
        // `other`'s region) or read into the wrong memory.
        let dir = TempDir::new("fs-fixed-other");
        let pool = rt.block_on(async { FixedBufPool::new(2, BLOCK).unwrap() });
        let other = support::runtime_with(support::choice_like(rt));
        let mine = rt.block_on(async { FixedBufPool::new(1, BLOCK).unwrap() });
        let theirs = other.block_on(async { FixedBufPool::new(1, BLOCK).unwrap() });
        assert_eq!(mine.is_registered(), theirs.is_registered());
        let buf = pool.try_take().unwrap();
        let buf = other.block_on(async {
            let f = pattern_file(&dir).await;
            let buf = read_block(&f, buf, 3).await;
            let theirs_buf = read_block(&f, theirs.try_take().unwrap(), 5).await;
            drop(theirs_buf);
            buf
        });
        // Outside any loop and on a thread of its own, it is just memory.
        let buf = std::thread::spawn(move || {
            assert_eq!(buf.len(), BLOCK);
            buf
        })
        .join()
        .unwrap();
        // Back on its own loop it reads (fixed, on io_uring) again.
        rt.block_on(async {
            let f = pattern_file(&dir).await;
            drop(read_block(&f, buf, 7).await);
        });
        assert_eq!(pool.available(), 2);
        drop((other, mine, theirs));
    }

    fn a_read_built_on_its_loop_but_submitted_on_another_reads_plainly(rt) {
        // A read polled first when its task's coop budget is spent builds its
        // op but does not submit it (`op` rule O4). Moved to another loop
        // before its next poll, it is submitted there: the entry must be
        // chosen by the loop that submits, not the one that built the op.
        // `other` has a pool of its own at the same entry index: named there,
        // the buffer's entry would be refused (EFAULT) or be other memory.
        let dir = TempDir::new("fs-fixed-moved");
        let p = dir.path("f");
        std::fs::write(&p, pattern(16 * BLOCK)).unwrap();
        let file = File::from_std(std::fs::File::open(&p).unwrap());
        let pool = rt.block_on(async { FixedBufPool::new(1, BLOCK).unwrap() });
        let other = support::runtime_with(support::choice_like(rt));
        let theirs = other.block_on(async { FixedBufPool::new(1, BLOCK).unwrap() });
        assert_eq!(pool.is_registered(), theirs.is_registered());
        let mut read = Box::pin(file.read_exact_at(pool.try_take().unwrap(), 2 * BLOCK as u64));
        let first = rt.block_on(std::future::poll_fn(|cx| {
            // Spend the budget of this poll, then poll the read once.
            while std::pin::Pin::new(&mut coil::task::consume_budget()).poll(cx).is_ready() {}
            std::task::Poll::Ready(read.as_mut().poll(cx))
        }));
        let BufResult(res, buf) = match first {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => other.block_on(read.as_mut()),
        };
        res.unwrap();
        assert_eq!(&buf[..], &pattern(16 * BLOCK)[2 * BLOCK..3 * BLOCK]);
        drop((buf, read));
        assert_eq!(pool.available(), 1);
        drop((other, theirs));
    }

    fn a_fixed_buffer_outliving_its_runtime_reads_plainly_on_the_next(rt) {
        // A pool (and a buffer) kept after its runtime is dropped: the next
        // runtime's first pool takes the same entry index, so were loop ids
        // reused (`rt::next_core_id` never does), the buffer's entry would be
        // named on the new ring (EFAULT, or another region).
        let dir = TempDir::new("fs-fixed-after");
        let gone = support::runtime_with(support::choice_like(rt));
        let pool = gone.block_on(async { FixedBufPool::new(1, BLOCK).unwrap() });
        let buf = pool.try_take().unwrap();
        drop(gone);
        rt.block_on(async {
            let theirs = FixedBufPool::new(1, BLOCK).unwrap();
            assert_eq!(pool.is_registered(), theirs.is_registered());
            let f = pattern_file(&dir).await;
            let buf = read_block(&f, buf, 9).await;
            let theirs_buf = read_block(&f, theirs.try_take().unwrap(), 4).await;
            drop((buf, theirs_buf));
        });
        assert_eq!(pool.available(), 1);
        drop(pool); // its loop is gone: nothing left to release
    }

    fn a_read_dropped_in_flight_keeps_its_buffer_out(rt) {
        let dir = TempDir::new("fs-fixed-drop");
        let uring = rt.driver().kind() == DriverKind::Uring;
        rt.block_on(async {
            let f = pattern_file(&dir).await;
            let pool = FixedBufPool::new(1, BLOCK).unwrap();
            for round in 0..support::scaled(100) {
                let buf = pool.try_take().unwrap();
                let done = support::poll_once(f.read_exact_at(buf, BLOCK as u64)).await;
                match done {
                    // epoll reads page-cached data at once.
                    Some(BufResult(r, buf)) => {
                        assert!(!uring, "io_uring completes only after the loop parks");
                        r.unwrap();
                        drop(buf);
                    }
                    // The op, orphaned, owns the buffer until its completion
                    // (`io/fixed.rs` rule F1): not back in the pool yet.
                    None if uring => assert_eq!(pool.available(), 0, "round {round}"),
                    None => {}
                }
                let back = support::yield_until(|| pool.available() == 1, 1_000).await;
                assert!(back, "round {round}: the buffer came back after the completion");
            }
            // And the buffer still reads correctly.
            drop(read_block(&f, pool.try_take().unwrap(), 2).await);
        });
    }

    fn fixed_reads_in_flight_when_the_runtime_drops_give_their_buffers_back(rt) {
        // Two reads started on a runtime that is then dropped: one future
        // dropped first (an orphan), one kept and polled after the runtime
        // is gone (`op` rule O5). The teardown waits for both completions,
        // so both buffers come back; the pool then drops with no loop left.
        let dir = TempDir::new("fs-fixed-teardown");
        let p = dir.path("f");
        std::fs::write(&p, pattern(16 * BLOCK)).unwrap();
        let file = File::from_std(std::fs::File::open(&p).unwrap());
        let own = support::runtime_with(support::choice_like(rt));
        let pool = own.block_on(async { FixedBufPool::new(2, BLOCK).unwrap() });
        let mut kept = Box::pin(file.read_exact_at(pool.try_take().unwrap(), 0));
        let orphan = Box::pin(file.read_exact_at(pool.try_take().unwrap(), BLOCK as u64));
        let (first, second) = own.block_on(async {
            let first = support::poll_once(kept.as_mut()).await;
            (first, support::poll_once(orphan).await)
        });
        let uring = own.driver().kind() == DriverKind::Uring;
        assert_eq!(first.is_none() && second.is_none(), uring, "in flight only on io_uring");
        drop(own);
        let kept_out = match first {
            Some(out) => out,
            None => {
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match kept.as_mut().poll(&mut cx) {
                    std::task::Poll::Ready(out) => out,
                    std::task::Poll::Pending => panic!("a drained runtime answers at once"),
                }
            }
        };
        // The read finished or was cancelled by the teardown: either way
        // the buffer is back in the caller's hands.
        let BufResult(_, buf) = kept_out;
        drop((second, buf, kept));
        assert_eq!(pool.available(), 2, "both buffers back after the teardown");
        drop(pool);
    }

    fn take_waits_for_the_buffer_a_read_holds(rt) {
        // One buffer, lent to reads in turn: each task waits in `take` for
        // the buffer the other's read holds until its completion.
        let dir = TempDir::new("fs-fixed-take");
        rt.block_on(async {
            let f = std::rc::Rc::new(pattern_file(&dir).await);
            let pool = FixedBufPool::new(1, BLOCK).unwrap();
            let tasks: Vec<_> = (0..4)
                .map(|t| {
                    let (f, pool) = (f.clone(), pool.clone());
                    coil::spawn(async move {
                        for block in (t..16).step_by(4) {
                            drop(read_block(&f, pool.take().await, block).await);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(pool.available(), 1);
        });
    }

    fn entries_of_dropped_pools_are_released_and_reused(rt) {
        // More pools than a ring's 1 024 entries, each dropped before the
        // next: on its loop (released at once), between `block_on` calls and
        // on another thread (left on the loop's list, released by the next
        // `new`). Were entries not released, io_uring would answer ENOSPC.
        let dir = TempDir::new("fs-fixed-reuse");
        let mut keep = None;
        for i in 0..1_100 {
            let pool = rt.block_on(async {
                let pool = FixedBufPool::new(1, BLOCK).unwrap();
                if i % 100 == 0 {
                    let f = pattern_file(&dir).await;
                    drop(read_block(&f, pool.try_take().unwrap(), i % 16).await);
                }
                pool
            });
            match i % 3 {
                0 => rt.block_on(async move { drop(pool) }),
                1 => drop(pool),
                _ => keep = Some(std::thread::spawn(move || drop(pool))),
            }
            if let Some(t) = keep.take() {
                t.join().unwrap();
            }
        }
    }
}

/// Drops `CAP_IPC_LOCK` from this thread's effective set, so that io_uring
/// charges registered pages to `RLIMIT_MEMLOCK` (root is exempt).
fn drop_ipc_lock() {
    const CAP_IPC_LOCK: u32 = 14; // linux/capability.h
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills the two live `Data` words for this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset reads the header and the two live `Data` words.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// A registration the kernel refuses is an `io::Error` with its errno: in a
/// child process (the limit and the capability are process state), with
/// `RLIMIT_MEMLOCK` at 64 KiB and `CAP_IPC_LOCK` dropped, a 256 KiB pool is
/// `ENOMEM` on io_uring, while a 16 KiB one is registered. Under epoll nothing
/// is registered, so both succeed.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot run child processes or io_uring")]
fn a_registration_refused_by_memlock_is_enomem() {
    const CHILD: &str = "COIL_TEST_FIXED_MEMLOCK_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let name = "fs_fixed::a_registration_refused_by_memlock_is_enomem";
        support::rerun_in_child(name, &[(CHILD, "1")], support::WATCHDOG);
        return;
    }
    drop_ipc_lock();
    let lim = libc::rlimit {
        rlim_cur: 64 << 10,
        rlim_max: 64 << 10,
    };
    // SAFETY: `lim` is a live local.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const lim) };
    assert_eq!(rc, 0);
    for (choice, kind) in [
        (DriverChoice::Uring, DriverKind::Uring),
        (DriverChoice::Epoll, DriverKind::Epoll),
    ] {
        let rt = support::runtime_with(choice);
        assert_eq!(rt.driver().kind(), kind);
        rt.block_on(async {
            let big = FixedBufPool::new(64, BLOCK);
            let small = FixedBufPool::new(4, BLOCK).unwrap();
            if kind == DriverKind::Uring {
                let err = big.unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::ENOMEM), "{err}");
                assert!(small.is_registered());
            } else {
                assert!(!big.unwrap().is_registered());
                assert!(!small.is_registered());
            }
        });
    }
}
