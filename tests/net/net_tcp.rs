//! TCP under every driver: echo, partial I/O and EOF, errors with their errno,
//! cancellation that loses nothing (docs/reliability.md, checks 21–28, 32, 35).

use crate::support;

use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::spawn;

use support::tcp_pair as pair;

/// A foreign waker whose `wake` panics (the panicking-waker tests below).
fn panicking_waker() -> std::task::Waker {
    struct PanicWake;
    impl std::task::Wake for PanicWake {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("this waker panics");
        }
    }
    std::task::Waker::from(std::sync::Arc::new(PanicWake))
}

/// A std writer and a coil reader connected over loopback.
fn std_pair() -> (std::net::TcpStream, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let w = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (r, _) = l.accept().unwrap();
    r.set_nonblocking(true).unwrap();
    (w, TcpStream::from_std(r).unwrap())
}

driver_test! {
    fn echo_roundtrip(rt) {
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let server = spawn(async move {
                let (s, peer) = l.accept().await.unwrap();
                assert_eq!(peer, s.peer_addr().unwrap());
                loop {
                    let BufResult(n, buf) = s.read(Vec::with_capacity(4096)).await;
                    let n = n.unwrap();
                    if n == 0 {
                        break;
                    }
                    let BufResult(r, _) = s.write_all(buf).await;
                    r.unwrap();
                }
            });
            let c = TcpStream::connect(addr).await.unwrap();
            c.set_nodelay(true).unwrap();
            assert!(c.nodelay().unwrap());
            for i in 0..50u8 {
                let msg = vec![i; 1 + usize::from(i) * 37];
                let BufResult(r, msg) = c.write_all(msg).await;
                r.unwrap();
                let BufResult(r, back) = c.read_exact(Vec::with_capacity(msg.len())).await;
                r.unwrap();
                assert_eq!(back, msg);
            }
            c.shutdown(Shutdown::Write).await.unwrap();
            server.await.unwrap();
        });
    }

    fn many_concurrent_connections(rt) {
        // Item 21 (scaled: 500 here; the 9k/10k runs are in the stress tier).
        let n = support::scaled(500);
        rt.block_on(async move {
            let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let l2 = l.clone();
            let server = spawn(async move {
                let mut conns = Vec::new();
                for _ in 0..n {
                    let (s, _) = l2.accept().await.unwrap();
                    conns.push(spawn(async move {
                        let BufResult(r, buf) = s.read_exact(Vec::with_capacity(1024)).await;
                        r.unwrap();
                        let BufResult(r, _) = s.write_all(buf).await;
                        r.unwrap();
                    }));
                }
                for c in conns {
                    c.await.unwrap();
                }
            });
            let clients: Vec<_> = (0..n)
                .map(|i| {
                    spawn(async move {
                        let c = TcpStream::connect(addr).await.unwrap();
                        let msg: Vec<u8> = (0..1024).map(|j| ((i * 31 + j) % 251) as u8).collect();
                        let BufResult(r, msg) = c.write_all(msg).await;
                        r.unwrap();
                        let BufResult(r, back) = c.read_exact(Vec::with_capacity(1024)).await;
                        r.unwrap();
                        assert_eq!(back, msg);
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
        });
    }

    fn partial_io_and_eof(rt) {
        // Item 35: 1 MiB through 4 KiB socket buffers (hundreds of partial
        // writes and reads), then EOF repeatedly.
        rt.block_on(async {
            let (a, b) = pair().await;
            for s in [&a, &b] {
                let fd = std::os::fd::AsRawFd::as_raw_fd(s);
                let v: i32 = 4096;
                // SAFETY: live local of the right size.
                unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, (&raw const v).cast(), 4) };
            }
            let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
            let want = data.clone();
            let writer = spawn(async move {
                let BufResult(r, _) = a.write_all(data).await;
                r.unwrap();
                a.shutdown(Shutdown::Write).await.unwrap();
                a
            });
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(1 << 20)).await;
            r.unwrap();
            assert!(got == want, "bytes differ");
            for _ in 0..3 {
                let BufResult(r, buf) = b.read(Vec::with_capacity(16)).await;
                assert_eq!(r.unwrap(), 0, "EOF is Ok(0), repeatedly");
                assert!(buf.is_empty());
            }
            let BufResult(r, _) = b.read(Vec::new()).await;
            assert_eq!(r.unwrap(), 0, "no spare capacity reads nothing");
            let _a = writer.await.unwrap();
        });
    }

    fn refused_connection_has_errno(rt) {
        rt.block_on(async {
            // Bind then close a listener to get a port nobody listens on.
            let addr = {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
            let err = TcpListener::bind("not an address").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        });
    }

    fn peer_reset_mid_write_is_an_error(rt) {
        // Item 23 (in-process: Rust programs ignore SIGPIPE, and sends use
        // MSG_NOSIGNAL anyway): the writer gets EPIPE/ECONNRESET.
        rt.block_on(async {
            let (a, b) = pair().await;
            b.set_linger(Some(Duration::ZERO)).unwrap();
            let reader = spawn(async move {
                let BufResult(r, _) = b.read_exact(Vec::with_capacity(64 << 10)).await;
                r.unwrap();
                drop(b); // linger 0: reset
            });
            let big = vec![7u8; 16 << 20];
            let BufResult(r, _) = a.write_all(big).await;
            let err = r.unwrap_err();
            assert!(
                matches!(err.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
                "{err}"
            );
            reader.await.unwrap();
        });
    }

    fn cancelled_read_loses_no_bytes(rt) {
        // Issue item 3 / docs/reliability.md, check 32: the data is already
        // there, the read is submitted and then dropped by an elapsed timeout
        // while in flight. Whatever the kernel delivered to the dropped read comes
        // back from the next read: the stream never loses or reorders bytes.
        rt.block_on(async {
            let (a, b) = pair().await;
            for round in 0..support::scaled(300) {
                let msg = format!("message number {round}");
                let BufResult(w, _) = a.write_all(msg.clone().into_bytes()).await;
                w.unwrap();
                let mut got = match support::poll_once(b.read(Vec::with_capacity(64))).await {
                    Some(BufResult(n, buf)) => {
                        n.unwrap();
                        buf
                    }
                    None => Vec::new(),
                };
                while got.len() < msg.len() {
                    let BufResult(r, buf) = b.read(Vec::with_capacity(msg.len() - got.len())).await;
                    assert!(r.unwrap() > 0, "EOF in round {round}");
                    got.extend_from_slice(&buf);
                }
                assert_eq!(got, msg.as_bytes(), "round {round}");
            }
        });
    }

    fn stream_read_and_write_all_dropped_in_each_state_drop_their_buffer_once(rt) {
        // The stream's read and write_all futures (src/net/stream.rs) own
        // their buffer in every state: before the first poll, waiting for a
        // dropped read still in flight (the read's first state, io_uring),
        // with their op in flight (then the op owns it until the kernel
        // is done), after returning it. Each buffer is dropped exactly
        // once, and the bytes a dropped read may have taken reach the next
        // read.
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Counted(Vec<u8>, Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        // SAFETY: a Vec's heap bytes: stable across moves, `len <= capacity`.
        unsafe impl coil::io::IoBuf for Counted {
            fn stable_ptr(&self) -> *const u8 {
                self.0.as_ptr()
            }
            fn bytes_init(&self) -> usize {
                self.0.len()
            }
            fn bytes_total(&self) -> usize {
                self.0.capacity()
            }
        }
        // SAFETY: as above, writable for `capacity` bytes.
        unsafe impl coil::io::IoBufMut for Counted {
            fn stable_mut_ptr(&mut self) -> *mut u8 {
                self.0.as_mut_ptr()
            }
            unsafe fn set_init(&mut self, pos: usize) {
                // SAFETY: the caller's promise (initialised, within capacity).
                unsafe { self.0.set_len(pos) }
            }
        }
        fn counted(v: Vec<u8>) -> (Counted, Arc<AtomicUsize>) {
            let c = Arc::new(AtomicUsize::new(0));
            (Counted(v, c.clone()), c)
        }
        rt.block_on(async {
            let (a, b) = pair().await;
            // write_all: not polled.
            let (buf, c0) = counted(vec![1; 10]);
            drop(a.write_all(buf));
            assert_eq!(c0.load(Ordering::SeqCst), 1);
            // write_all: in flight (the peer reads nothing, 16 MiB do not fit
            // in the socket buffers), dropped.
            let (buf, c1) = counted(vec![2; 16 << 20]);
            assert!(support::poll_once(a.write_all(buf)).await.is_none());
            // write_all: completed, the buffer handed back.
            let (c, d) = pair().await;
            let (buf, c2) = counted(b"done".to_vec());
            let BufResult(r, back) = c.write_all(buf).await;
            r.unwrap();
            assert_eq!(c2.load(Ordering::SeqCst), 0);
            drop(back);
            // read: in flight (nothing to read yet), dropped; then a read that
            // may wait for it (its first state), dropped; then the peer writes.
            let (e, f) = pair().await;
            let (buf, c3) = counted(Vec::with_capacity(64));
            assert!(support::poll_once(f.read(buf)).await.is_none());
            let (buf, c4) = counted(Vec::with_capacity(64));
            assert!(support::poll_once(f.read(buf)).await.is_none());
            let BufResult(r, _) = e.write_all(&b"hello"[..]).await;
            r.unwrap();
            let mut got = Vec::new();
            while got.len() < 5 {
                let BufResult(r, buf) = f.read(Vec::with_capacity(64)).await;
                assert!(r.unwrap() > 0);
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, b"hello", "the dropped reads lost nothing");
            // That read waited for the dropped one (op/fd.rs rule 4): both
            // dropped reads' buffers are gone by now.
            assert_eq!(c4.load(Ordering::SeqCst), 1);
            assert_eq!(c3.load(Ordering::SeqCst), 1);
            let BufResult(r, buf) = d.read_exact(Vec::with_capacity(4)).await;
            r.unwrap();
            assert_eq!(buf, b"done");
            assert_eq!(c2.load(Ordering::SeqCst), 1);
            // The dropped write's fd closes once its op is done: EOF at the
            // peer means the op gave its buffer back.
            drop(a);
            let mut sent = 0;
            loop {
                let BufResult(r, _) = b.read(Vec::with_capacity(1 << 20)).await;
                match r.unwrap() {
                    0 => break,
                    n => sent += n,
                }
            }
            assert!(sent < 16 << 20, "the dropped write did not finish");
            assert_eq!(c1.load(Ordering::SeqCst), 1);
            assert_eq!(c0.load(Ordering::SeqCst), 1);
        });
    }

    fn a_panicking_io_waker_loses_no_other_wake_of_its_batch(rt) {
        // Two reads complete in one batch while the run queue is empty: a
        // read polled with a foreign waker that panics, then a task's
        // read. The panic unwinds out of block_on; the task's wake-up must
        // not be lost with it (src/rt/io.rs, dispatch_completions).
        use std::io::Write;
        let handle = std::cell::RefCell::new(None);
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let (mut w1, r1) = std_pair();
                let (mut w2, r2) = std_pair();
                let w = panicking_waker();
                let mut cx = std::task::Context::from_waker(&w);
                let mut f = Box::pin(r1.read(Vec::with_capacity(8)));
                assert!(std::future::Future::poll(f.as_mut(), &mut cx).is_pending());
                let t = spawn(async move {
                    let BufResult(r, _) = r2.read(Vec::with_capacity(8)).await;
                    r.unwrap()
                });
                coil::task::yield_now().await;
                *handle.borrow_mut() = Some(t);
                w1.write_all(b"a").unwrap();
                w2.write_all(b"b").unwrap();
                std::future::pending::<()>().await;
                drop((f, w1, w2));
            })
        }));
        assert!(first.is_err(), "the waker's panic reaches block_on's caller");
        let t = handle.borrow_mut().take().unwrap();
        rt.block_on(async {
            let r = coil::time::timeout(Duration::from_secs(5), t).await;
            assert!(r.is_ok(), "the task's read completed in the panicking batch was lost");
        });
    }

    fn a_panicking_io_waker_loses_no_orphan_of_its_batch(rt) {
        // A read dropped in flight (an orphan under io_uring) completes in
        // the same batch as a read whose foreign waker panics: the orphan
        // must still be finished, so the byte it took is kept for the next
        // read and the socket's orphan count goes back to zero (otherwise
        // that next read would wait forever: it did, under all three
        // drivers, before `FinishOrphans` in src/rt/io.rs).
        use std::io::Write;
        let kept = std::cell::RefCell::new(None);
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let (mut w1, r1) = std_pair();
                let (mut w3, r3) = std_pair();
                let w = panicking_waker();
                let mut cx = std::task::Context::from_waker(&w);
                let mut f = Box::pin(r1.read(Vec::with_capacity(8)));
                assert!(std::future::Future::poll(f.as_mut(), &mut cx).is_pending());
                let mut g = Box::pin(r3.read(Vec::with_capacity(8)));
                std::future::poll_fn(|cx| {
                    assert!(std::future::Future::poll(g.as_mut(), cx).is_pending());
                    std::task::Poll::Ready(())
                })
                .await;
                // Both reads reach the kernel.
                coil::task::yield_now().await;
                w1.write_all(b"a").unwrap();
                w3.write_all(b"c").unwrap();
                // Dropped in flight: its completion (the byte, or a
                // cancellation) lands with the panicking read's.
                drop(g);
                *kept.borrow_mut() = Some((r3, w3));
                std::future::pending::<()>().await;
                drop((f, w1));
            })
        }));
        assert!(first.is_err(), "the waker's panic reaches block_on's caller");
        let (r3, _w3) = kept.borrow_mut().take().unwrap();
        rt.block_on(async {
            let r = coil::time::timeout(Duration::from_secs(5), r3.read(Vec::with_capacity(8))).await;
            let BufResult(n, buf) = r.expect("the read after the orphan waited forever");
            assert_eq!(n.unwrap(), 1);
            assert_eq!(buf, b"c", "the orphan's byte was lost");
        });
    }

    fn resolves_host_names_off_the_loop(rt) {
        rt.block_on(async {
            let l = TcpListener::bind_to("localhost:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let c = spawn(async move { TcpStream::connect(("localhost", port)).await });
            let (_s, _) = l.accept().await.unwrap();
            c.await.unwrap().unwrap();
        });
    }

    fn ipv6_loopback(rt) {
        rt.block_on(async {
            let Ok(l) = TcpListener::bind("[::1]:0") else {
                return; // no IPv6 on this machine
            };
            let addr: SocketAddr = l.local_addr().unwrap();
            assert!(addr.is_ipv6());
            let c = spawn(TcpStream::connect(addr));
            let (s, _) = l.accept().await.unwrap();
            let c = c.await.unwrap().unwrap();
            let BufResult(r, _) = c.write_all(&b"v6"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = s.read_exact(Vec::with_capacity(2)).await;
            r.unwrap();
            assert_eq!(buf, b"v6");
        });
    }

    fn io_progresses_while_a_task_spins(rt) {
        // Item 13: a task that yields forever keeps the queue non-empty; the
        // loop must still submit and reap I/O (every `event_interval` polls).
        rt.block_on(async {
            let stop = Rc::new(std::cell::Cell::new(false));
            let s2 = stop.clone();
            let spinner = spawn(async move {
                while !s2.get() {
                    coil::task::yield_now().await;
                }
            });
            let (a, b) = pair().await;
            for i in 0..50u32 {
                let BufResult(r, _) = a.write_all(i.to_le_bytes().to_vec()).await;
                r.unwrap();
                let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
                r.unwrap();
                assert_eq!(buf, i.to_le_bytes());
            }
            stop.set(true);
            spinner.await.unwrap();
        });
    }

    fn split_halves_in_two_tasks(rt) {
        rt.block_on(async {
            let (a, b) = pair().await;
            let (ra, wa) = a.into_split();
            let reader = spawn(async move {
                let BufResult(r, buf) = ra.read_exact(Vec::with_capacity(5)).await;
                r.unwrap();
                buf
            });
            let BufResult(r, _) = b.write_all(&b"hello"[..]).await;
            r.unwrap();
            assert_eq!(reader.await.unwrap(), b"hello");
            let BufResult(r, _) = wa.write_all(&b"back"[..]).await;
            r.unwrap();
            let BufResult(r, buf) = b.read_exact(Vec::with_capacity(4)).await;
            r.unwrap();
            assert_eq!(buf, b"back");
        });
    }

    fn connect_timeout_times_out(rt) {
        rt.block_on(async {
            // A listener with a backlog of 0 that never accepts: once its
            // queue is full, the kernel drops further SYNs and connect hangs.
            // SAFETY: plain system call without pointers.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            assert!(fd >= 0);
            // SAFETY: `fd` was just created and is owned by nothing else.
            let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let std_l = std::net::TcpListener::from(owned);
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
                sin_zero: [0; 8],
            };
            // SAFETY: `sa` is a live sockaddr_in of the size passed.
            assert_eq!(unsafe { libc::bind(fd, (&raw const sa).cast(), size_of::<libc::sockaddr_in>() as u32) }, 0);
            // SAFETY: plain system call on our socket.
            assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
            let addr = std_l.local_addr().unwrap();
            let mut kept = Vec::new();
            let mut timed_out = false;
            for _ in 0..8 {
                match TcpStream::connect_timeout(addr, Duration::from_millis(30)).await {
                    Ok(s) => kept.push(s),
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                        timed_out = true;
                        break;
                    }
                }
            }
            assert!(timed_out, "every connect succeeded although the backlog is full");
        });
    }
}
