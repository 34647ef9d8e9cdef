//! Buffered streams under every driver: BufReader line and record splitting
//! across chunk boundaries (and a property test against std's BufRead),
//! cancel-safety of read_line, BufWriter flushing, io::copy.

use crate::support;

use std::io::BufRead;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use coil::io::{AsyncWriteOwned, BufReader, BufResult, BufWriter, copy};
use coil::net::{TcpListener, TcpStream, UnixStream};
use coil::spawn;
use coil::stream::StreamExt;
use coil::time::{sleep, timeout};
use proptest::prelude::*;

/// Writes `data` to `w` in pieces of the given sizes, letting the loop run
/// between pieces (so the reader sees them as separate reads), then closes
/// the write direction.
async fn feed(w: UnixStream, data: Vec<u8>, chunks: Vec<usize>) {
    let mut rest = &data[..];
    let mut sizes = chunks.into_iter().cycle();
    while !rest.is_empty() {
        let k = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let BufResult(r, _) = w.write_all(rest[..k].to_vec()).await;
        r.unwrap();
        rest = &rest[k..];
        coil::task::yield_now().await;
    }
    w.shutdown(Shutdown::Write).await.unwrap();
}

fn std_lines(data: &[u8]) -> Vec<String> {
    std::io::Cursor::new(data)
        .lines()
        .map(Result::unwrap)
        .collect()
}

fn std_records(data: &[u8], delim: u8) -> Vec<Vec<u8>> {
    let mut c = std::io::Cursor::new(data);
    let mut out = Vec::new();
    loop {
        let mut v = Vec::new();
        if c.read_until(delim, &mut v).unwrap() == 0 {
            return out;
        }
        out.push(v);
    }
}

driver_test! {
    fn read_line_across_chunk_boundaries(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let text = "alpha\nbeta\r\n\ngamma delta epsilon\nno newline at the end";
            let writer = spawn(feed(a, text.as_bytes().to_vec(), vec![1, 2, 3, 5, 8]));
            let mut r = BufReader::with_capacity(4, b);
            let mut got = Vec::new();
            loop {
                let mut line = String::new();
                let n = r.read_line(&mut line).await.unwrap();
                if n == 0 {
                    break;
                }
                assert_eq!(n, line.len());
                got.push(line);
            }
            assert_eq!(got, ["alpha\n", "beta\r\n", "\n", "gamma delta epsilon\n", "no newline at the end"]);
            writer.await.unwrap();
        });
    }

    fn lines_stream_matches_std(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let text = b"one\r\ntwo\n\nthree\nfour".to_vec();
            let want = std_lines(&text);
            let writer = spawn(feed(a, text, vec![2, 7]));
            let got: Vec<String> = BufReader::with_capacity(3, b).lines().map(Result::unwrap).collect().await;
            assert_eq!(got, want);
            writer.await.unwrap();
        });
    }

    fn read_until_read_exact_and_invalid_utf8(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut data = b"k1=v1;k2=v2;".to_vec();
            data.extend_from_slice(&[0xff, 0xfe, b'\n']);
            data.extend_from_slice(b"0123456789tail");
            let writer = spawn(feed(a, data, vec![3]));
            let mut r = BufReader::with_capacity(5, b);
            let mut rec = Vec::new();
            assert_eq!(r.read_until(b';', &mut rec).await.unwrap(), 6);
            assert_eq!(r.read_until(b';', &mut rec).await.unwrap(), 6);
            assert_eq!(rec, b"k1=v1;k2=v2;");
            let mut line = String::from("kept");
            let err = r.read_line(&mut line).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            assert_eq!(line, "kept");
            let mut ten = [0u8; 10];
            r.read_exact(&mut ten).await.unwrap();
            assert_eq!(&ten, b"0123456789");
            let mut big = [0u8; 10];
            let err = r.read_exact(&mut big).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
            assert_eq!(r.buffer(), b"tail", "a failed read_exact consumes nothing");
            let mut small = [0u8; 3];
            assert_eq!(r.read(&mut small).await.unwrap(), 3);
            assert_eq!(&small, b"tai");
            let mut rest = Vec::new();
            assert_eq!(r.read_to_end(&mut rest).await.unwrap(), 1);
            assert_eq!(rest, b"l");
            assert_eq!(r.next_line().await.unwrap(), None);
            writer.await.unwrap();
        });
    }

    fn read_line_is_cancel_safe(rt) {
        // A read_line dropped by a timeout half-way through a line consumes
        // nothing: the next call returns the whole line.
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut r = BufReader::with_capacity(4, b);
            for round in 0..20 {
                let BufResult(w, _) = a.write_all(format!("partial-{round}-").into_bytes()).await;
                w.unwrap();
                let mut line = String::new();
                assert!(timeout(Duration::from_millis(3), r.read_line(&mut line)).await.is_err());
                assert!(line.is_empty());
                let BufResult(w, _) = a.write_all(&b"end\n"[..]).await;
                w.unwrap();
                // Sometimes poll the second attempt once and drop it: it
                // either returns the whole line or consumes nothing.
                let mut line = String::new();
                let done = round % 2 == 0
                    && matches!(support::poll_once(r.read_line(&mut line)).await, Some(Ok(_)));
                if !done {
                    assert!(line.is_empty());
                    r.read_line(&mut line).await.unwrap();
                }
                assert_eq!(line, format!("partial-{round}-end\n"));
            }
        });
    }

    fn buf_writer_flushes_when_full_and_on_flush(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut w = BufWriter::with_capacity(16, a);
            w.write_all(b"0123456789").await.unwrap();
            assert_eq!(w.buffer(), b"0123456789", "nothing sent before the buffer fills");
            // Nothing arrived yet.
            let probe = timeout(Duration::from_millis(5), b.read(Vec::with_capacity(64))).await;
            assert!(probe.is_err());
            w.write_all(b"abcdefghij").await.unwrap();
            // 16 bytes went out when the buffer filled; 4 remain.
            assert_eq!(w.buffer(), b"ghij");
            let BufResult(r, got) = b.read_exact(Vec::with_capacity(16)).await;
            r.unwrap();
            assert_eq!(got, b"0123456789abcdef");
            w.flush().await.unwrap();
            assert!(w.buffer().is_empty());
            let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            // Read concurrently: 6250 small sends would fill the socket.
            let reader = spawn(async move {
                let mut r = BufReader::new(b);
                let mut all = Vec::new();
                r.read_to_end(&mut all).await.unwrap();
                all
            });
            w.write_all(&big).await.unwrap();
            w.shutdown().await.unwrap();
            let all = reader.await.unwrap();
            assert_eq!(&all[..4], b"ghij");
            assert!(all[4..] == big[..]);
        });
    }

    fn buf_writer_reports_peer_gone(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let mut w = BufWriter::with_capacity(8, a);
            w.write_all(b"1234").await.unwrap();
            let err = w.flush().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "{err}");
            assert_eq!(w.buffer(), b"1234", "unsent bytes stay buffered");
        });
    }

    fn copy_between_streams(rt) {
        // A TCP proxy leg: unix -> tcp with io::copy, 3 MiB, then EOF passed on.
        rt.block_on(async {
            let (src_w, src_r) = UnixStream::pair().unwrap();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let c = spawn(TcpStream::connect(addr));
            let (dst_server, _) = l.accept().await.unwrap();
            let dst_client = c.await.unwrap().unwrap();
            let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 253) as u8).collect();
            let want = data.clone();
            let writer = spawn(async move {
                let BufResult(r, _) = src_w.write_all(data).await;
                r.unwrap();
            });
            let pump = spawn(async move {
                let n = copy(&src_r, &dst_client).await.unwrap();
                dst_client.write_eof().await.unwrap();
                n
            });
            let mut r = BufReader::new(dst_server);
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert_eq!(pump.await.unwrap(), want.len() as u64);
            assert!(got == want);
            writer.await.unwrap();
        });
    }

    fn copy_through_rc_and_halves(rt) {
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (c, d) = UnixStream::pair().unwrap();
            let (br, _bw) = b.into_split();
            let c = Rc::new(c);
            let c2 = c.clone();
            let pump = spawn(async move { copy(&br, &c2).await.unwrap() });
            let BufResult(r, _) = a.write_all(&b"through the pump"[..]).await;
            r.unwrap();
            drop(a);
            assert_eq!(pump.await.unwrap(), 16);
            drop(c);
            let mut r = BufReader::new(d);
            assert_eq!(r.next_line().await.unwrap().as_deref(), Some("through the pump"));
            sleep(Duration::ZERO).await;
        });
    }
}

/// Property: for any data, any chunking of the writes and any buffer
/// capacity, BufReader's lines and read_until records equal std's.
fn property(choice: coil::runtime::DriverChoice) {
    support::run_watched(move || {
        let rt = coil::Runtime::builder().driver(choice).build().unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: support::scaled(128) as u32,
            ..ProptestConfig::default()
        });
        let data = proptest::collection::vec(
            prop_oneof![4 => b'a'..=b'e', 2 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b';')],
            0..400,
        );
        let strategy = (
            data,
            proptest::collection::vec(1usize..64, 1..8),
            1usize..24,
        );
        runner
            .run(&strategy, |(data, chunks, cap)| {
                let (want_lines, want_recs) = (std_lines(&data), std_records(&data, b';'));
                let (lines, recs) = rt.block_on(async {
                    let (a, b) = UnixStream::pair().unwrap();
                    let w = spawn(feed(a, data.clone(), chunks.clone()));
                    let lines: Vec<String> = BufReader::with_capacity(cap, b)
                        .lines()
                        .map(Result::unwrap)
                        .collect()
                        .await;
                    w.await.unwrap();
                    let (a, b) = UnixStream::pair().unwrap();
                    let w = spawn(feed(a, data.clone(), chunks.clone()));
                    let mut r = BufReader::with_capacity(cap, b);
                    let mut recs = Vec::new();
                    loop {
                        let mut v = Vec::new();
                        if r.read_until(b';', &mut v).await.unwrap() == 0 {
                            break;
                        }
                        recs.push(v);
                    }
                    w.await.unwrap();
                    (lines, recs)
                });
                prop_assert_eq!(lines, want_lines);
                prop_assert_eq!(recs, want_recs);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot run io_uring")]
fn prop_lines_and_records_match_std_uring() {
    property(coil::runtime::DriverChoice::Uring);
}

#[test]
fn prop_lines_and_records_match_std_epoll() {
    property(coil::runtime::DriverChoice::Epoll);
}
