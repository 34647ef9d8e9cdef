//! `coil::fs::File` under every driver: positional and cursor I/O, append,
//! truncate, create_new, read_to_end, metadata, sync, close, errors with
//! their errno, and cancelled reads.

use crate::support;
use support::TempDir;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use coil::fs::{self, File, OpenOptions};
use coil::io::BufResult;

/// Deterministic content: byte i = (i * 31 + i / 251) as u8.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

async fn read_all(p: &Path) -> Vec<u8> {
    fs::read(p).await.unwrap()
}

driver_test! {
    fn write_at_read_at_round_trip(rt) {
        let dir = TempDir::new("fs-rw_at");
        rt.block_on(async {
            let p = dir.path("f");
            let f = OpenOptions::new().read(true).write(true).create(true).open(&p).await.unwrap();
            let data = pattern(10_000);
            let BufResult(r, back) = f.write_all_at(data.clone(), 100).await;
            r.unwrap();
            assert_eq!(back, data, "the buffer comes back unchanged");
            let BufResult(n, buf) = f.read_at(Vec::with_capacity(10_100), 0).await;
            assert_eq!(n.unwrap(), 10_100);
            assert_eq!(&buf[..100], &[0u8; 100][..], "the hole reads as zeros");
            assert_eq!(&buf[100..], &data[..]);
            // A read fills only the spare capacity, after existing bytes.
            let mut v = Vec::with_capacity(6);
            v.extend_from_slice(b"xy");
            let BufResult(n, buf) = f.read_at(v, 100).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(&buf[2..], &data[..4]);
            // Past the end: 0 (EOF).
            let BufResult(n, _) = f.read_at(Vec::with_capacity(8), 1 << 30).await;
            assert_eq!(n.unwrap(), 0);
            // Box<[u8]> and &'static buffers work too.
            let BufResult(n, _) = f.write_at(b"static".as_slice(), 0).await;
            assert_eq!(n.unwrap(), 6);
            let BufResult(r, boxed) = f.read_exact_at(vec![0u8; 6].into_boxed_slice(), 0).await;
            r.unwrap();
            assert_eq!(&*boxed, b"\0\0\0\0\0\0", "a Box<[u8]> is full: nothing to read into");
            assert_eq!(f.position(), 0, "positional I/O leaves the cursor alone");
        });
    }

    fn positional_and_cursor_are_independent(rt) {
        let dir = TempDir::new("fs-cursor");
        rt.block_on(async {
            let p = dir.path("f");
            fs::write(&p, "0123456789").await.unwrap();
            let f = OpenOptions::new().read(true).write(true).open(&p).await.unwrap();
            let BufResult(n, a) = f.read(Vec::with_capacity(3)).await;
            assert_eq!((n.unwrap(), a.as_slice()), (3, &b"012"[..]));
            assert_eq!(f.position(), 3);
            let BufResult(n, b) = f.read_at(Vec::with_capacity(2), 8).await;
            assert_eq!((n.unwrap(), b.as_slice()), (2, &b"89"[..]));
            assert_eq!(f.position(), 3);
            let BufResult(n, _) = f.write("ab").await;
            assert_eq!(n.unwrap(), 2);
            assert_eq!(f.position(), 5);
            let BufResult(n, c) = f.read(Vec::with_capacity(100)).await;
            assert_eq!((n.unwrap(), c.as_slice()), (5, &b"56789"[..]));
            assert_eq!(f.read(Vec::with_capacity(1)).await.0.unwrap(), 0, "EOF");
            f.set_position(1);
            f.write_all(String::from("XYZ")).await.0.unwrap();
            assert_eq!(f.position(), 4);
            drop(f);
            assert_eq!(read_all(&p).await, b"0XYZb56789");
        });
    }

    fn append_mode_writes_at_the_end(rt) {
        let dir = TempDir::new("fs-append");
        rt.block_on(async {
            let p = dir.path("log");
            fs::write(&p, "a\n").await.unwrap();
            let f = OpenOptions::new().append(true).open(&p).await.unwrap();
            f.write_all("b\n").await.0.unwrap();
            // The position argument is ignored in append mode.
            f.write_all_at("c\n", 0).await.0.unwrap();
            f.write("d\n").await.0.unwrap();
            assert_eq!(f.position(), 0);
            let g = OpenOptions::new().append(true).create(true).open(&p).await.unwrap();
            g.write_all("e\n").await.0.unwrap();
            assert_eq!(fs::read_to_string(&p).await.unwrap(), "a\nb\nc\nd\ne\n");
            // Reading an append-only file: EBADF.
            let BufResult(r, _) = f.read_at(Vec::with_capacity(4), 0).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
        });
    }

    fn truncate_on_open_and_set_len(rt) {
        let dir = TempDir::new("fs-truncate");
        rt.block_on(async {
            let p = dir.path("f");
            fs::write(&p, vec![9u8; 5000]).await.unwrap();
            // Without truncate: existing bytes stay.
            let f = OpenOptions::new().write(true).open(&p).await.unwrap();
            f.write_all("xx").await.0.unwrap();
            drop(f);
            assert_eq!(fs::metadata(&p).await.unwrap().len(), 5000);
            let f = OpenOptions::new().read(true).write(true).truncate(true).open(&p).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), 0);
            f.set_len(10_000).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), 10_000);
            let BufResult(r, buf) = f.read_exact_at(Vec::with_capacity(10_000), 0).await;
            r.unwrap();
            assert!(buf.iter().all(|&b| b == 0), "extended with zeros");
            f.set_len(3).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), 3);
            // File::create truncates too.
            drop(f);
            fs::write(&p, "long contents").await.unwrap();
            let c = File::create(&p).await.unwrap();
            assert_eq!(c.metadata().await.unwrap().len(), 0);
            // set_len on a read-only file: the OS error.
            let r = File::open(&p).await.unwrap();
            let e = r.set_len(1).await.unwrap_err();
            assert!(matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EBADF)), "{e:?}");
        });
    }

    fn create_new_on_an_existing_file_is_already_exists(rt) {
        let dir = TempDir::new("fs-create_new");
        rt.block_on(async {
            let p = dir.path("f");
            let f = OpenOptions::new().write(true).create_new(true).open(&p).await.unwrap();
            f.write_all("first").await.0.unwrap();
            let e = OpenOptions::new().write(true).create_new(true).open(&p).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
            assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
            assert_eq!(fs::read_to_string(&p).await.unwrap(), "first", "untouched");
            // Contradictory options: InvalidInput, nothing opened.
            let e = OpenOptions::new().open(&p).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
            let e = OpenOptions::new().read(true).create(true).open(&p).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        });
    }

    fn read_to_end_of_a_multi_mb_file(rt) {
        let dir = TempDir::new("fs-rte");
        let data = pattern(5 * 1024 * 1024 + 123);
        std::fs::write(dir.path("big"), &data).unwrap();
        rt.block_on(async move {
            let p = dir.path("big");
            let f = File::open(&p).await.unwrap();
            let BufResult(n, buf) = f.read_to_end(Vec::new()).await;
            assert_eq!(n.unwrap(), data.len());
            assert!(buf == data, "read_to_end returned different bytes");
            assert_eq!(f.position(), data.len() as u64);
            // Again: at the end, nothing more; existing bytes are kept.
            let BufResult(n, buf) = f.read_to_end(b"keep".to_vec()).await;
            assert_eq!(n.unwrap(), 0);
            assert_eq!(buf, b"keep");
            // From the middle.
            f.set_position(1_000_000);
            let BufResult(n, buf) = f.read_to_end(Vec::new()).await;
            assert_eq!(n.unwrap(), data.len() - 1_000_000);
            assert!(buf[..] == data[1_000_000..]);
            assert!(fs::read(&p).await.unwrap() == data);
            // A file whose size statx does not know (procfs says 0).
            let status = fs::read_to_string("/proc/self/status").await.unwrap();
            assert!(status.contains("VmRSS"));
        });
    }

    fn metadata_fields(rt) {
        let dir = TempDir::new("fs-metadata");
        rt.block_on(async {
            let before = SystemTime::now() - Duration::from_secs(2);
            let p = dir.path("f");
            let f = OpenOptions::new().write(true).create(true).mode(0o600).open(&p).await.unwrap();
            f.write_all(vec![1u8; 12_345]).await.0.unwrap();
            let md = f.metadata().await.unwrap();
            assert_eq!(md.len(), 12_345);
            assert!(md.is_file() && !md.is_dir() && !md.is_symlink());
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(md.permissions().mode() & 0o777, 0o600);
            assert_eq!(md.mode() & 0o777, 0o600);
            assert_eq!(md.nlink(), 1);
            let now = SystemTime::now() + Duration::from_secs(2);
            let m = md.modified().unwrap();
            assert!(before <= m && m <= now, "{m:?}");
            let a = md.accessed().unwrap();
            assert!(before <= a && a <= now, "{a:?}");
            match md.created() {
                Ok(c) => assert!(before <= c && c <= now, "{c:?}"),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
            }
            // The same as std's view of the file.
            let std_md = std::fs::metadata(&p).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(md.ino(), std_md.ino());
            assert_eq!(md.dev(), std_md.dev());
            assert_eq!(md.uid(), std_md.uid());
            assert_eq!(md.modified().unwrap(), std_md.modified().unwrap());
            let by_path = fs::metadata(&p).await.unwrap();
            assert_eq!(by_path.ino(), md.ino());
            let d = fs::metadata(dir.dir()).await.unwrap();
            assert!(d.is_dir() && !d.is_file());
            assert!(format!("{md:?}").contains("len: 12345"));
        });
    }

    fn sync_and_explicit_close(rt) {
        let dir = TempDir::new("fs-sync");
        rt.block_on(async {
            let p = dir.path("f");
            let f = File::create(&p).await.unwrap();
            f.write_all("durable").await.0.unwrap();
            f.sync_data().await.unwrap();
            f.sync_all().await.unwrap();
            let raw = f.as_raw_fd();
            f.close().await.unwrap();
            // The number is closed now (nothing else in this test reopens it
            // before the check... other tests may, so only check it is not
            // our file any more).
            let still_ours = std::fs::read_link(format!("/proc/self/fd/{raw}"))
                .map(|t| t == p)
                .unwrap_or(false);
            assert!(!still_ours, "close() left the fd open");
            assert_eq!(fs::read_to_string(&p).await.unwrap(), "durable");
        });
    }

    fn errors_keep_the_errno(rt) {
        let dir = TempDir::new("fs-errors");
        rt.block_on(async {
            let missing = dir.path("missing/x");
            let e = File::open(&missing).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            // EBADF: reading a write-only file, writing a read-only one.
            let p = dir.path("f");
            let w = File::create(&p).await.unwrap();
            let BufResult(r, buf) = w.read_at(Vec::with_capacity(10), 0).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(buf.capacity(), 10, "the buffer comes back on error");
            let BufResult(r, _) = w.read(Vec::with_capacity(10)).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(w.position(), 0, "an error does not move the cursor");
            let ro = File::open(&p).await.unwrap();
            let BufResult(r, _) = ro.write_all("x").await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            // EISDIR: reading a directory.
            let d = File::open(dir.dir()).await.unwrap();
            let BufResult(r, _) = d.read_at(Vec::with_capacity(10), 0).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EISDIR));
            // A NUL in the path: InvalidInput before any system call.
            let e = File::open("bad\0path").await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        });
    }

    fn permission_denied(rt) {
        let dir = TempDir::new("fs-perm");
        rt.block_on(async {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            if !root {
                let p = dir.path("locked");
                fs::write(&p, "x").await.unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
                let e = File::open(&p).await.unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EACCES));
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            }
            // Also as root: sysctl files enforce their 0444 mode (EACCES)...
            let e = OpenOptions::new().write(true).open("/proc/sys/kernel/version").await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e:?}");
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            // ...and procfs refuses to unlink its files (EPERM).
            let e = fs::remove_file("/proc/self/status").await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e:?}");
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        });
    }

    fn concurrent_positional_reads_share_one_file(rt) {
        let dir = TempDir::new("fs-concurrent");
        let data = pattern(1 << 20);
        std::fs::write(dir.path("f"), &data).unwrap();
        rt.block_on(async move {
            let f = Rc::new(File::open(dir.path("f")).await.unwrap());
            let data = Rc::new(data);
            let tasks: Vec<_> = (0..32u64)
                .map(|t| {
                    let (f, data) = (f.clone(), data.clone());
                    coil::spawn(async move {
                        let mut buf = Vec::with_capacity(4096);
                        for i in 0..16u64 {
                            let off = ((t * 16 + i) * 7919 % 256) * 4096;
                            buf.clear();
                            let BufResult(r, b) = f.read_exact_at(buf, off).await;
                            r.unwrap();
                            assert_eq!(&b[..], &data[off as usize..off as usize + 4096]);
                            buf = b;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    }

    fn cancelled_reads_and_writes_leave_the_file_usable(rt) {
        let dir = TempDir::new("fs-cancel");
        let data = pattern(4 << 20);
        std::fs::write(dir.path("f"), &data).unwrap();
        rt.block_on(async move {
            let f = OpenOptions::new().read(true).write(true).open(dir.path("f")).await.unwrap();
            for i in 0..200u64 {
                // Dropped at once (after one poll) or soon after: the
                // buffer stays owned by the op until it completes.
                if i % 3 == 0 {
                    let _ = support::poll_once(f.read_at(Vec::with_capacity(1 << 20), i * 4096)).await;
                    let _ = support::poll_once(f.read(Vec::with_capacity(4096))).await;
                    continue;
                }
                let d = Duration::from_micros(i % 3 * 50);
                let _ = coil::time::timeout(d, f.read_at(Vec::with_capacity(1 << 20), i * 4096)).await;
                let _ = coil::time::timeout(d, f.read(Vec::with_capacity(4096))).await;
            }
            // A dropped cursor read does not move the cursor unless it finished.
            let pos = f.position();
            assert_eq!(pos % 4096, 0);
            let BufResult(r, buf) = f.read_exact_at(Vec::with_capacity(4096), 8192).await;
            r.unwrap();
            assert_eq!(&buf[..], &data[8192..12288]);
            // Dropped writes of the same bytes: the content stays right.
            for i in 0..50u64 {
                let at = i * 4096;
                let chunk = data[at as usize..at as usize + 4096].to_vec();
                let _ = support::poll_once(f.write_all_at(chunk, at)).await;
            }
            // Let stragglers finish (io_uring: the op table; epoll: the pool).
            coil::time::sleep(Duration::from_millis(50)).await;
            assert!(fs::read(dir.path("f")).await.unwrap() == data);
        });
    }

    fn from_std_and_outside_use(rt) {
        let dir = TempDir::new("fs-from_std");
        std::fs::write(dir.path("f"), "std file").unwrap();
        rt.block_on(async {
            let f = File::from_std(std::fs::File::open(dir.path("f")).unwrap());
            let BufResult(n, buf) = f.read(Vec::with_capacity(64)).await;
            assert_eq!(n.unwrap(), 8);
            assert_eq!(buf, b"std file");
            let a = File::from_std(std::fs::OpenOptions::new().append(true).open(dir.path("f")).unwrap());
            a.write_all("!").await.0.unwrap();
            assert_eq!(fs::read_to_string(dir.path("f")).await.unwrap(), "std file!");
        });
    }
}

/// Outside any coil loop the operations run on the blocking pool; the
/// futures work with any executor (here: a minimal thread-parking one).
#[test]
fn works_outside_a_runtime() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    fn block_on<F: Future>(fut: F) -> F::Output {
        let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
    let dir = TempDir::new("fs-outside");
    let p = dir.path("f");
    block_on(fs::write(&p, "outside")).unwrap();
    assert_eq!(block_on(fs::read_to_string(&p)).unwrap(), "outside");
    let f = block_on(File::open(&p)).unwrap();
    assert_eq!(block_on(f.metadata()).unwrap().len(), 7);
}

/// A buffer that counts its drops (`ReadExactAt` moves it between states
/// that are dropped by hand).
struct CountedBuf {
    v: Vec<u8>,
    drops: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// SAFETY: delegates to the Vec, whose heap block stays put when the
// `CountedBuf` moves.
unsafe impl coil::io::IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.v.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.v.len()
    }
    fn bytes_total(&self) -> usize {
        self.v.capacity()
    }
}

// SAFETY: as above.
unsafe impl coil::io::IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.v.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller's promise (`IoBufMut::set_init`).
        unsafe { self.v.set_len(pos) };
    }
}

/// `read_exact_at` dropped while its *second* read is in flight (the first
/// one returned part of the buffer; the state went `Ring`, `Done`, `Start`,
/// `Ring` again): the op owns the buffer until its cancellation completes,
/// then drops it, once. A FIFO makes the second read wait (io_uring).
#[test]
#[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
fn read_exact_at_dropped_between_its_reads_drops_the_buffer_once() {
    use std::future::Future as _;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::task::Poll;

    let rt = support::runtime_with(coil::runtime::DriverChoice::Uring);
    let h = rt.handle();
    let dir = TempDir::new("fs-read-exact-drop");
    let path = dir.path("fifo");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path, live for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    rt.block_on(async move {
        let target = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut feed = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let f = File::from_std(target);
        let drops = std::sync::Arc::new(AtomicU32::new(0));
        let buf = CountedBuf {
            v: Vec::with_capacity(8),
            drops: drops.clone(),
        };
        let mut fut = Box::pin(f.read_exact_at(buf, 0));
        let base = h.metrics().ops_submitted;
        {
            let mut poll = async || {
                std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
            };
            assert!(poll().await, "an empty FIFO: the first read waits");
            assert_eq!(h.metrics().ops_submitted, base + 1);
            std::io::Write::write_all(&mut feed, b"abcd").unwrap();
            let mut turns = 0;
            while h.metrics().ops_submitted < base + 2 {
                turns += 1;
                assert!(turns < 100_000, "the second read was never submitted");
                coil::task::yield_now().await;
                assert!(poll().await, "4 of 8 bytes: the second read waits");
            }
        }
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(fut);
        let mut turns = 0;
        while coil::runtime::stats().unwrap().io_ops != 0 {
            turns += 1;
            assert!(turns < 100_000, "the dropped read was never cancelled");
            coil::task::yield_now().await;
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the buffer, dropped once");
    });
}
