//! Faults under every driver: bad fds, fd-number reuse with an op pending,
//! out of fds on accept (docs/reliability.md, checks 22, 24, 25).

mod support;

use std::os::fd::AsRawFd;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::spawn;
use coil::time::timeout;

use support::tcp_pair_on as pair;

async fn io_idle() {
    while coil::runtime::stats().unwrap().io_ops > 0 {
        coil::task::yield_now().await;
    }
}

driver_test! {
    fn closed_fd_gives_ebadf(rt) {
        // Item 24: an fd closed behind the runtime's back gives EBADF, not a
        // panic or a hang.
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let std_s = std::net::TcpStream::connect(addr).unwrap();
            let (_peer, _) = l.accept().await.unwrap();
            // Move the socket to a high fd number first: the kernel hands out
            // the lowest free number, so no other test thread will reuse this
            // one after we close it. Each run (the three driver variants run
            // at once) takes its own range: with one shared floor, a variant
            // could dup onto the number another had just closed, and that
            // one's read would wait on a stranger's socket (the likely cause
            // of one 60 s watchdog failure of the epoll_fallback variant).
            static NEXT_BASE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(15_000);
            let base = NEXT_BASE.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: F_DUPFD_CLOEXEC on a live fd; the copy is owned below.
            let high = unsafe { libc::fcntl(std_s.as_raw_fd(), libc::F_DUPFD_CLOEXEC, base) };
            assert!(high >= base, "{}", std::io::Error::last_os_error());
            drop(std_s);
            // SAFETY: `high` is a fresh fd owned by nothing else.
            let std_s = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(high) };
            let s = TcpStream::from_std(std_s).unwrap();
            let fd = s.as_raw_fd();
            // SAFETY: deliberately closing the fd behind the stream's back
            // (the test is about exactly that misuse).
            unsafe { libc::close(fd) };
            let BufResult(r, _) = s.read(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            let BufResult(r, _) = s.write(&b"x"[..]).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            // The stream will close the number again on drop; make sure no
            // other file holds it by then.
            std::mem::forget(s);
        });
    }

    fn pending_read_then_fd_closed_behind_our_back_never_hangs(rt) {
        // Item 24, second half: the caller can always get out with a timeout.
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let (a, _b) = pair(&l).await;
            let fd = a.as_raw_fd();
            let read = a.read(Vec::with_capacity(8));
            let r = timeout(Duration::from_millis(20), async {
                // SAFETY: deliberate misuse under test; see above.
                let _ = unsafe { libc::shutdown(fd, libc::SHUT_RD) };
                read.await
            })
            .await;
            if let Ok(BufResult(r, _)) = r {
                // shutdown(SHUT_RD) makes the read see EOF, or an error.
                assert!(matches!(r, Ok(0) | Err(_)));
            }
        });
    }

    fn fd_number_reuse_with_pending_read(rt) {
        // Item 25: a read pending on stream A is cancelled and A closed (the
        // runtime waits for the cancellation before closing); the next stream
        // often gets A's fd number; data for B reaches only B's reader.
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut reused = 0;
            for round in 0..support::scaled(1000) {
                let (a, a_peer) = pair(&l).await;
                let a_fd = a.as_raw_fd();
                let reader = spawn(async move {
                    let BufResult(r, buf) = a.read(Vec::with_capacity(16)).await;
                    (r.map_err(|e| e.raw_os_error()), buf)
                });
                coil::task::yield_now().await;
                reader.cancel();
                assert!(reader.await.unwrap_err().is_cancelled());
                io_idle().await;
                drop(a_peer);
                let (b, b_peer) = pair(&l).await;
                if b.as_raw_fd() == a_fd || b_peer.as_raw_fd() == a_fd {
                    reused += 1;
                }
                let msg = format!("round {round}");
                let BufResult(w, _) = b_peer.write_all(msg.clone().into_bytes()).await;
                w.unwrap();
                let BufResult(r, got) = b.read_exact(Vec::with_capacity(msg.len())).await;
                r.unwrap();
                assert_eq!(got, msg.as_bytes());
            }
            assert!(reused > 0, "fd numbers were never reused: the test did not test reuse");
        });
    }
}

/// Item 22: out of fds on accept. The server keeps its listener, reports
/// EMFILE as an error (the loop below backs off instead of spinning), and
/// recovers once fds are freed. Runs in a child process with a soft
/// RLIMIT_NOFILE of 64.
#[test]
fn emfile_on_accept_recovers() {
    if std::env::var_os("COIL_EMFILE_CHILD").is_some() {
        emfile_child();
        return;
    }
    for driver in ["uring", "epoll"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "emfile_on_accept_recovers",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("COIL_EMFILE_CHILD", "1")
            .env("COIL_DRIVER", driver)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{driver}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn emfile_child() {
    coil::run(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (clients, filler) = support::connect_then_fill_fd_table(addr, 8);
        let cpu0 = support::cpu_time();
        let start = std::time::Instant::now();
        let mut emfile = 0;
        while start.elapsed() < Duration::from_millis(300) {
            match l.accept().await {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    emfile += 1;
                    coil::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("unexpected accept error {e}"),
                Ok(_) => panic!("accepted with a full fd table"),
            }
        }
        let cpu = support::cpu_time() - cpu0;
        assert!(emfile > 0, "never saw EMFILE");
        assert!(
            cpu < Duration::from_millis(200),
            "spun: {cpu:?} of CPU in 300 ms"
        );
        drop(filler);
        for _ in 0..8 {
            let (s, _) = timeout(Duration::from_secs(5), l.accept())
                .await
                .unwrap()
                .unwrap();
            drop(s);
        }
        drop(clients);
    });
}

/// Item 23 with the default SIGPIPE disposition (Rust programs ignore SIGPIPE
/// before `main`; a program embedding coil might not): writing to a socket
/// whose peer is gone must give EPIPE/ECONNRESET, not kill the process.
#[test]
fn no_sigpipe_death_with_default_disposition() {
    if std::env::var_os("COIL_SIGPIPE_CHILD").is_some() {
        // SAFETY: restoring the default handler in this child process only.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        coil::run(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let (a, b) = pair(&l).await;
            drop(b);
            let mut saw_error = false;
            for _ in 0..100 {
                let BufResult(r, _) = a.write_all(vec![1u8; 64 << 10]).await;
                if let Err(e) = r {
                    assert!(
                        matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
                        "{e}"
                    );
                    saw_error = true;
                    break;
                }
            }
            assert!(saw_error, "writes to a closed peer kept succeeding");
        });
        return;
    }
    for driver in ["uring", "epoll"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "no_sigpipe_death_with_default_disposition",
                "--nocapture",
            ])
            .env("COIL_SIGPIPE_CHILD", "1")
            .env("COIL_DRIVER", driver)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{driver}: child died or failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
