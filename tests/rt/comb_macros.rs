//! join!, try_join! and select! under every driver.

use crate::support;

use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::spawn;
use coil::sync::Event;
use coil::time::sleep;
use support::{flag, panic_message_of};

async fn after<T>(ms: u64, v: T) -> T {
    sleep(Duration::from_millis(ms)).await;
    v
}

driver_test! {
    fn join_of_three_types_keeps_argument_order(rt) {
        let out = rt.block_on(async {
            coil::join!(after(20, 1u8), after(0, "two"), async { after(10, vec![3]).await }).await
        });
        assert_eq!(out, (1, "two", vec![3]));
    }

    fn try_join_ok_then_first_err_drops_the_other_at_once(rt) {
        rt.block_on(async {
            let ok = coil::try_join!(after(10, Ok::<_, String>(1)), after(0, Ok(2.5))).await;
            assert_eq!(ok, Ok((1, 2.5)));

            let (dropped, guard) = flag();
            let slow = async move {
                let _guard = guard;
                after(3_600_000, Ok::<u8, String>(0)).await
            };
            let r = coil::try_join!(slow, after(5, Err::<(), _>("bad".to_string()))).await;
            assert_eq!(r, Err("bad".to_string()));
            assert!(dropped.get(), "the slow future was dropped before the error came back");
        });
    }
}

driver_test! {
    fn select_biased_polls_in_written_order(rt) {
        rt.block_on(async {
            for _ in 0..10 {
                let won = coil::select! {
                    biased;
                    v = async { 'a' } => v,
                    v = async { 'b' } => v,
                    v = async { 'c' } => v,
                };
                assert_eq!(won, 'a', "biased: the first ready branch as written wins every time");
            }
        });
    }

    fn select_rotates_the_first_branch_polled(rt) {
        rt.block_on(async {
            let rounds = 1000;
            let mut wins = [0u32; 2];
            for _ in 0..rounds {
                coil::select! {
                    () = async {} => wins[0] += 1,
                    () = async {} => wins[1] += 1,
                }
            }
            assert_eq!(wins[0] + wins[1], rounds);
            assert!(wins.iter().all(|&w| w > rounds / 4), "both ready every round, unfair: {wins:?}");
        });
    }

    fn select_read_losing_to_a_timer_keeps_its_bytes(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let connect = spawn(TcpStream::connect(listener.local_addr().unwrap()));
            let (server, _) = listener.accept().await.unwrap();
            let client = connect.await.unwrap().unwrap();
            let (dropped, guard) = flag();
            let timer_won = coil::select! {
                BufResult(r, _) = async {
                    let _guard = guard;
                    client.read(Vec::with_capacity(64)).await
                } => panic!("nothing was written, yet the read finished: {r:?}"),
                () = sleep(Duration::from_millis(20)) => dropped.get(),
            };
            assert!(timer_won, "the losing read was dropped before the handler ran");
            let BufResult(r, _) = server.write_all(&b"kept"[..]).await;
            r.unwrap();
            let BufResult(n, buf) = client.read(Vec::with_capacity(64)).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, b"kept", "the next read returns the bytes");
        });
    }

    fn select_refuted_pattern_falls_through_else_and_preconditions(rt) {
        rt.block_on(async {
            // `None` refutes `Some(..)`: that branch is disabled, the slower one wins.
            let won = coil::select! {
                Some(mut v) = async { None::<u32> } => { v += 1; v }
                v = after(10, 7) => v,
            };
            assert_eq!(won, 7);
            let won = coil::select! {
                Some(mut v) = async { Some(1) } => { v += 1; v }
                v = after(3_600_000, 7) => v,
            };
            assert_eq!(won, 2, "a `mut` binding in a pattern that matches");
            let won = coil::select! {
                &(a, ref b) = async { &(1, 2) } => a + *b,
            };
            assert_eq!(won, 3, "reference patterns and `ref` bindings");

            // Every branch refuted, or disabled by its precondition: `else`.
            let off = false;
            let r = coil::select! {
                Some(v) = async { None::<u8> } => v,
                Ok(v) = async { Err::<u8, ()>(()) } => v,
                v = after(0, 5), if off => v,
                else => 99,
            };
            assert_eq!(r, 99);
        });
        let msg = panic_message_of(|| {
            support::run_like(rt, async {
                coil::select! {
                    Some(v) = async { None::<u8> } => v,
                }
            })
        });
        assert!(msg.contains("no `else` branch"), "{msg}");
    }

    fn select_nine_branches_loop_control_and_a_kept_future(rt) {
        rt.block_on(async {
            // One `wait` kept across selects by `&mut` (polled in every round),
            // nine branches, `continue` and `break` from handlers acting on the
            // caller's loop.
            let event = Event::new();
            let mut kept = std::pin::pin!(event.wait());
            let mut round = 0;
            let mut seen = Vec::new();
            loop {
                round += 1;
                coil::select! {
                    biased;
                    v = after(3_600_000, 1) => seen.push(v),
                    v = after(3_600_000, 2) => seen.push(v),
                    v = after(3_600_000, 3) => seen.push(v),
                    v = after(3_600_000, 4) => seen.push(v),
                    v = after(3_600_000, 5) => seen.push(v),
                    v = after(3_600_000, 6) => seen.push(v),
                    _ = after(0, 7), if round == 1 => continue,
                    v = after(0, 8), if round == 2 => {
                        seen.push(v);
                        event.set();
                    }
                    () = &mut kept => break,
                }
            }
            assert_eq!(seen, [8], "round 1 continued, round 2 took the 8th, round 3 the 9th");
            assert_eq!(round, 3);
        });
    }
}
