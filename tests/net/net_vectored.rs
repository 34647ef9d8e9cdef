//! Vectored writes under every driver (docs/reliability.md, check 35): IOV_MAX
//! buffers in one call, more than IOV_MAX split, zero buffers, 16 MB through
//! 4 KB socket buffers with `write_all_vectored`, and a vectored write
//! dropped in flight that never sends freed memory.

use crate::support;

use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use coil::io::BufResult;
use coil::net::UnixStream;
use coil::spawn;

const IOV_MAX: usize = 1024;

use support::tcp_pair;

fn small_sndbuf(fd: RawFd) {
    let v: i32 = 4096;
    // SAFETY: `v` is a live local of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const v).cast(),
            4,
        )
    };
    assert_eq!(rc, 0);
}

/// `n` buffers of 1..=13 bytes, each byte telling its buffer and position.
fn numbered_bufs(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..1 + i % 13).map(|j| (i * 7 + j) as u8).collect())
        .collect()
}

fn concat(bufs: &[Vec<u8>]) -> Vec<u8> {
    bufs.concat()
}

/// `len` bytes, byte k being k % 251 (a prime: no alignment with buffer
/// sizes).
fn pattern(len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..251u8).collect();
    let mut p = block.repeat(len / 251 + 1);
    p.truncate(len);
    p
}

/// `data` in buffers of 1..=8191 bytes (4,000-odd for 16 MB: several
/// IOV_MAX splits), so that short writes end inside buffers at arbitrary
/// offsets.
fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
    let mut bufs = Vec::new();
    let (mut at, mut i) = (0usize, 0usize);
    while at < data.len() {
        let len = (1 + (i * 2749) % 8191).min(data.len() - at);
        bufs.push(data[at..at + len].to_vec());
        at += len;
        i += 1;
    }
    bufs
}

fn check(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len());
    if got != want {
        let k = got.iter().zip(want).position(|(a, b)| a != b);
        panic!("byte {k:?} differs");
    }
}

driver_test! {
    fn iov_max_buffers_in_one_write_arrive_in_order(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let bufs = numbered_bufs(IOV_MAX);
            let want = concat(&bufs);
            // ~7 KB into an empty socketpair (~200 KB of buffer): all of it
            // goes in one sendmsg with 1,024 iovecs.
            let BufResult(r, back) = a.write_vectored(bufs).await;
            assert_eq!(r.unwrap(), want.len());
            assert_eq!(back.len(), IOV_MAX, "the buffers come back");
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(want.len())).await;
            r.unwrap();
            assert!(got == want, "bytes out of order");

            // The same over TCP, through the owned write half.
            let (c, s) = tcp_pair().await;
            let (_cr, cw) = c.into_split();
            let bufs = numbered_bufs(IOV_MAX);
            let BufResult(r, _) = cw.write_all_vectored(bufs).await;
            r.unwrap();
            let BufResult(r, got) = s.read_exact(Vec::with_capacity(want.len())).await;
            r.unwrap();
            assert!(got == want, "bytes out of order over TCP");
        });
    }

    fn more_than_iov_max_buffers_are_split_not_refused(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            // 1,025 one-byte buffers: one call sends the first 1,024 (a
            // short write, never EINVAL/EMSGSIZE).
            let bufs: Vec<Vec<u8>> = (0..=IOV_MAX).map(|i| vec![i as u8]).collect();
            let BufResult(r, bufs) = a.write_vectored(bufs).await;
            assert_eq!(r.unwrap(), IOV_MAX);
            assert_eq!(bufs.len(), IOV_MAX + 1);
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(IOV_MAX)).await;
            r.unwrap();
            assert_eq!(got, concat(&bufs[..IOV_MAX]));

            // write_all_vectored sends all of them, and of 3,000 more.
            let (_r, w) = a.into_split();
            let BufResult(r, bufs) = w.write_all_vectored(bufs).await;
            r.unwrap();
            let more = numbered_bufs(3000);
            let BufResult(r, more) = w.write_all_vectored(more).await;
            r.unwrap();
            let want = [concat(&bufs), concat(&more)].concat();
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(want.len())).await;
            r.unwrap();
            assert!(got == want, "bytes differ");
        });
    }

    fn zero_and_empty_buffers_write_nothing(rt) {
        rt.block_on(async {
            let (c, s) = tcp_pair().await;
            let BufResult(r, bufs) = c.write_vectored(Vec::<Vec<u8>>::new()).await;
            assert_eq!(r.unwrap(), 0);
            assert!(bufs.is_empty());
            let BufResult(r, bufs) = c.write_vectored(vec![Vec::new(), Vec::new()]).await;
            assert_eq!(r.unwrap(), 0);
            assert_eq!(bufs.len(), 2);
            let BufResult(r, _) = c.write_all_vectored(Vec::<Vec<u8>>::new()).await;
            r.unwrap();
            let BufResult(r, _) = c.write_all_vectored(vec![Vec::new(); 3]).await;
            r.unwrap();
            // Empty buffers between full ones are skipped over.
            let bufs = vec![vec![], b"ab".to_vec(), vec![], vec![], b"c".to_vec(), vec![]];
            let BufResult(r, _) = c.write_all_vectored(bufs).await;
            r.unwrap();
            c.shutdown(Shutdown::Write).await.unwrap();
            let BufResult(r, got) = s.read_exact(Vec::with_capacity(3)).await;
            r.unwrap();
            assert_eq!(got, b"abc", "nothing else was sent");
            let BufResult(r, _) = s.read(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap(), 0, "then EOF");
        });
    }

    fn write_all_vectored_16mb_through_4kb_socket_buffers(rt) {
        // 16 MB through a socketpair and 4 MB over loopback TCP (slow with
        // 4 KB buffers: one small segment per ACK), both with SO_SNDBUF =
        // 4 KB, then EOF repeatedly.
        const TOTAL: usize = 16 << 20;
        let pattern = pattern(TOTAL);
        let tcp_pattern = &pattern[..TOTAL / 4];
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (c, s) = tcp_pair().await;
            for fd in [a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd(), s.as_raw_fd()] {
                small_sndbuf(fd);
            }
            let (unix_bufs, tcp_bufs) = (chunks(&pattern), chunks(tcp_pattern));
            let unix_writer = spawn(async move {
                let BufResult(r, bufs) = a.write_all_vectored(unix_bufs).await;
                r.unwrap();
                assert!(bufs.len() > 3 * IOV_MAX, "{} buffers", bufs.len());
                a.shutdown(Shutdown::Write).await.unwrap();
                a
            });
            let tcp_writer = spawn(async move {
                let BufResult(r, _) = c.write_all_vectored(tcp_bufs).await;
                r.unwrap();
                c.shutdown(Shutdown::Write).await.unwrap();
                c
            });
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(pattern.len())).await;
            r.unwrap();
            check(&got, &pattern);
            let BufResult(r, got) = s.read_exact(Vec::with_capacity(tcp_pattern.len())).await;
            r.unwrap();
            check(&got, tcp_pattern);
            // EOF, and reads after EOF keep returning Ok(0).
            for _ in 0..3 {
                let BufResult(r, buf) = b.read(Vec::with_capacity(16)).await;
                assert_eq!(r.unwrap(), 0, "EOF is Ok(0), repeatedly");
                assert!(buf.is_empty());
                let BufResult(r, _) = s.read(Vec::with_capacity(16)).await;
                assert_eq!(r.unwrap(), 0, "EOF is Ok(0), repeatedly");
            }
            let _a = unix_writer.await.unwrap();
            let _c = tcp_writer.await.unwrap();
        });
    }

    fn dropped_vectored_write_sends_only_its_own_bytes(rt) {
        // A vectored write that blocks (4 KB send buffer, 256 KB to send)
        // is dropped in flight, as soon as its first bytes have reached the
        // peer (it loses a `select` to the peer's first read: no wall-clock
        // deadline, which a loaded machine could pass before the write was
        // even submitted); memory is then churned. Whatever the kernel sent
        // must be a prefix of the buffers' bytes: the iovec array and
        // buffers were parked with the op, never freed under the kernel.
        rt.block_on(async {
            for round in 0..20u8 {
                let (a, b) = UnixStream::pair().unwrap();
                small_sndbuf(a.as_raw_fd());
                let bufs: Vec<Vec<u8>> = (0..64).map(|i| vec![round ^ (i as u8); 4096]).collect();
                let want = concat(&bufs);
                // The read takes at most 64 KB, so the write cannot finish.
                let first = match coil::select(a.write_all_vectored(bufs), b.read(Vec::with_capacity(65536))).await {
                    coil::Either::Right(BufResult(r, buf)) => {
                        assert!(r.unwrap() > 0, "round {round}: the peer saw EOF");
                        buf
                    }
                    coil::Either::Left(_) => panic!("256 KB cannot fit in a 4 KB socket buffer"),
                };
                // Reuse freed memory, if any was freed.
                let churn: Vec<Vec<u8>> = (0..256).map(|_| vec![0xEE; 4096]).collect();
                drop(a);
                let mut got = first;
                loop {
                    let BufResult(r, buf) = b.read(Vec::with_capacity(65536)).await;
                    if r.unwrap() == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf);
                }
                drop(churn);
                assert!(!got.is_empty(), "round {round}: some bytes went out before the drop");
                assert!(got.len() <= want.len());
                assert!(got == want[..got.len()], "round {round}: sent bytes that were not the buffers'");
            }
        });
    }
}
