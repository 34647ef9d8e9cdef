//! `read_pooled` under every driver: bytes in a buffer of the loop's pool,
//! end of stream, cancellation that loses nothing, the fallback when every
//! pooled buffer is out, and a buffer that outlives its runtime
//! (docs/io-ops.md, provided buffers).

use crate::support;

use coil::io::{BufResult, PooledBuf};

use support::tcp_pair as pair;

driver_test! {
    fn pooled_read_delivers_bytes_then_eof(rt) {
        rt.block_on(async {
            let (a, b) = pair().await;
            let BufResult(w, _) = a.write_all(b"pooled".to_vec()).await;
            w.unwrap();
            let mut got = Vec::new();
            while got.len() < 6 {
                let buf = b.read_pooled().await.unwrap();
                assert!(buf.is_pooled(), "a pool buffer while the pool has free ones");
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, b"pooled");
            drop(a);
            let end = b.read_pooled().await.unwrap();
            assert!(end.is_empty(), "end of stream is an empty buffer");
        });
    }

    fn cancelled_pooled_read_loses_no_bytes(rt) {
        // As `cancelled_read_loses_no_bytes` (net_tcp.rs), with pooled reads:
        // a pooled read dropped after the kernel filled a buffer leaves its
        // bytes for the next read (pooled or plain), in order.
        rt.block_on(async {
            let (a, b) = pair().await;
            for round in 0..support::scaled(200) {
                let msg = format!("message number {round}");
                let BufResult(w, _) = a.write_all(msg.clone().into_bytes()).await;
                w.unwrap();
                let mut got = match support::poll_once(b.read_pooled()).await {
                    Some(buf) => buf.unwrap().into_vec(),
                    None => Vec::new(),
                };
                while got.len() < msg.len() {
                    if round % 2 == 0 {
                        let buf = b.read_pooled().await.unwrap();
                        assert!(!buf.is_empty(), "EOF in round {round}");
                        got.extend_from_slice(&buf);
                    } else {
                        let want = msg.len() - got.len();
                        let BufResult(r, buf) = b.read(Vec::with_capacity(want)).await;
                        assert!(r.unwrap() > 0, "EOF in round {round}");
                        got.extend_from_slice(&buf);
                    }
                }
                assert_eq!(got, msg.as_bytes(), "round {round}");
            }
        });
    }

    fn pooled_reads_fall_back_when_the_pool_is_out_and_outlive_the_runtime(rt) {
        // Holding every pool buffer: the next read still succeeds, in a plain
        // allocation; the held buffers stay valid after the runtime is gone
        // and go back (to a pool whose loop no longer exists) on drop.
        let choice = match rt.driver().kind() {
            coil::runtime::DriverKind::Uring => coil::runtime::DriverChoice::Uring,
            _ => coil::runtime::DriverChoice::Epoll,
        };
        let own = coil::Runtime::builder().driver(choice).build().unwrap();
        let held: Vec<PooledBuf> = own.block_on(async {
            let (a, b) = pair().await;
            let mut held = Vec::new();
            for i in 0..10_000u32 {
                let BufResult(w, _) = a.write_all(i.to_le_bytes().to_vec()).await;
                w.unwrap();
                let mut buf = b.read_pooled().await.unwrap();
                while buf.len() < 4 {
                    let more = b.read_pooled().await.unwrap();
                    let mut v = buf.into_vec();
                    v.extend_from_slice(&more);
                    buf = PooledBuf::from_vec(v);
                }
                assert_eq!(*buf, i.to_le_bytes(), "read {i}");
                let pooled = buf.is_pooled();
                held.push(buf);
                if !pooled && i > 0 {
                    drop(held.split_off(1)); // all but the first back to the pool
                    let BufResult(w, _) = a.write_all(b"again".to_vec()).await;
                    w.unwrap();
                    let again = b.read_pooled().await.unwrap();
                    assert!(again.is_pooled(), "buffers returned are lent again");
                    return held;
                }
            }
            panic!("10 000 reads held and the pool never ran out");
        });
        drop(own);
        assert!(held[0].is_pooled());
        assert_eq!(*held[0], 0u32.to_le_bytes());
        drop(held);
    }
}

#[test]
fn pooled_reads_in_the_simulator() {
    // The simulator lends a pool buffer at submission (user mode) and
    // delivers into it; a dropped pooled read keeps its bytes there too.
    let got = coil::sim::Builder::new().seed(18).run(async {
        let (a, b) = pair().await;
        let BufResult(w, _) = a.write_all(b"simulated".to_vec()).await;
        w.unwrap();
        let mut got = match support::poll_once(b.read_pooled()).await {
            Some(buf) => buf.unwrap().into_vec(),
            None => Vec::new(),
        };
        while got.len() < 9 {
            got.extend_from_slice(&b.read_pooled().await.unwrap());
        }
        drop(a);
        assert!(b.read_pooled().await.unwrap().is_empty());
        got
    });
    assert_eq!(got, b"simulated");
}
