//! `TcpListener::incoming` and `UnixListener::incoming` under every driver
//! and in the simulator: every connection comes out once, a dropped `next`
//! or a dropped stream loses no connection, and accept errors (EMFILE) are
//! items that do not end the stream.

mod support;

use std::future::Future;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr as UnixAddr;
use std::time::Duration;

use coil::io::{AsyncWriteOwned, BufResult};
use coil::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use coil::spawn;
use coil::stream::StreamExt;
use coil::task::Task;
use coil::time::{sleep, timeout};

const EMFILE_ENV: &str = "COIL_INCOMING_EMFILE_CHILD";

/// A fresh abstract Unix address (no file to clean up).
fn abstract_addr(tag: &str) -> UnixAddr {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "coil-incoming-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    UnixAddr::from_abstract_name(name.as_bytes()).unwrap()
}

/// Reads the one byte a client sent: its number.
async fn id_of(read: impl Future<Output = BufResult<(), Vec<u8>>>) -> u8 {
    let BufResult(r, buf) = read.await;
    r.unwrap();
    buf[0]
}

/// Spawns `n` clients; client `i` connects with `connect` and sends the
/// byte `i`, then keeps its stream open (the task's output).
fn spawn_clients<S, Fut>(n: u8, connect: impl Fn() -> Fut) -> Vec<Task<S>>
where
    S: AsyncWriteOwned + 'static,
    Fut: Future<Output = io::Result<S>> + 'static,
{
    (0..n)
        .map(|i| {
            let connecting = connect();
            spawn(async move {
                let c = connecting.await.unwrap();
                let BufResult(r, _) = c.write_all(vec![i]).await;
                r.unwrap();
                c
            })
        })
        .collect()
}

/// Every client's byte was read once; the clients finished.
async fn check_ids<S>(mut ids: Vec<u8>, clients: Vec<Task<S>>) {
    ids.sort_unstable();
    assert_eq!(ids, (0..clients.len() as u8).collect::<Vec<u8>>());
    for c in clients {
        c.await.unwrap();
    }
}

driver_test! {
    fn tcp_incoming_yields_every_connection_once(rt) {
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let clients = spawn_clients(20, move || TcpStream::connect(addr));
            let mut ids = Vec::new();
            let mut incoming = l.incoming().take(20);
            while let Some(conn) = incoming.next().await {
                let conn = conn.unwrap();
                ids.push(id_of(conn.read_exact(Vec::with_capacity(1))).await);
            }
            check_ids(ids, clients).await;
        });
    }

    fn unix_incoming_yields_every_connection_once(rt) {
        rt.block_on(async {
            let addr = abstract_addr("every");
            let l = UnixListener::bind_addr(&addr).unwrap();
            let clients = spawn_clients(20, move || {
                let addr = addr.clone();
                async move { UnixStream::connect_addr(&addr).await }
            });
            let conns: Vec<UnixStream> =
                l.incoming().take(20).map(Result::unwrap).collect().await;
            let mut ids = Vec::new();
            for conn in &conns {
                ids.push(id_of(conn.read_exact(Vec::with_capacity(1))).await);
            }
            check_ids(ids, clients).await;
        });
    }

    fn dropped_next_or_stream_loses_no_connection(rt) {
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let mut incoming = l.incoming();
            for round in 0..5u8 {
                // A `next` that times out leaves its accept pending inside
                // the stream; the next `next` finishes it.
                assert!(timeout(Duration::from_millis(2), incoming.next()).await.is_err());
                let c = TcpStream::connect(addr).await.unwrap();
                let BufResult(r, _) = c.write_all(vec![round]).await;
                r.unwrap();
                let s = incoming.next().await.unwrap().unwrap();
                assert_eq!(id_of(s.read_exact(Vec::with_capacity(1))).await, round);
            }
            // Dropping the stream with an accept in flight: the connection
            // that arrives goes to the listener's next accept.
            assert!(timeout(Duration::from_millis(2), incoming.next()).await.is_err());
            drop(incoming);
            let c = TcpStream::connect(addr).await.unwrap();
            let BufResult(r, _) = c.write_all(vec![99]).await;
            r.unwrap();
            let (s, _) = timeout(Duration::from_secs(5), l.accept()).await.unwrap().unwrap();
            assert_eq!(id_of(s.read_exact(Vec::with_capacity(1))).await, 99);
            // And a new stream starts where the listener is.
            let c2 = spawn(TcpStream::connect(addr));
            let _s2 = l.incoming().next().await.unwrap().unwrap();
            c2.await.unwrap().unwrap();
        });
    }
}

/// The simulator's listeners work with `incoming` too (virtual time, seeded
/// order, short writes injected).
#[test]
fn incoming_in_the_simulator() {
    for seed in 0..8 {
        coil::sim::Builder::new()
            .seed(seed)
            .faults(coil::sim::Faults {
                short_writes: 0.3,
                ..Default::default()
            })
            .run(async {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                let clients: Vec<_> = (0..10u8)
                    .map(|i| {
                        spawn(async move {
                            let c = TcpStream::connect(addr).await.unwrap();
                            // A vectored write: one buffer per op here.
                            let bufs = vec![vec![i], vec![i; 100], Vec::new(), vec![i; 50]];
                            let BufResult(r, _) = c.write_all_vectored(bufs).await;
                            r.unwrap();
                            c
                        })
                    })
                    .collect();
                let mut ids = Vec::new();
                let mut incoming = l.incoming().take(10);
                while let Some(conn) = incoming.next().await {
                    let conn = conn.unwrap();
                    let BufResult(r, buf) = conn.read_exact(Vec::with_capacity(151)).await;
                    r.unwrap();
                    assert!(
                        buf.iter().all(|&b| b == buf[0]),
                        "bytes of two clients mixed"
                    );
                    ids.push(buf[0]);
                }
                ids.sort_unstable();
                assert_eq!(ids, (0..10).collect::<Vec<u8>>());
                for c in clients {
                    c.await.unwrap();
                }
            });
    }
}

/// Out of fds: `incoming` yields EMFILE as items, keeps going, and yields
/// the connections once fds are free. A child process per driver with a
/// soft RLIMIT_NOFILE of 64.
#[test]
fn emfile_is_an_item_not_the_end() {
    if std::env::var_os(EMFILE_ENV).is_some() {
        emfile_child();
        return;
    }
    support::rerun_per_driver("emfile_is_an_item_not_the_end", EMFILE_ENV);
}

fn emfile_child() {
    coil::run(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (clients, filler) = support::connect_then_fill_fd_table(addr, 4);
        let mut incoming = l.incoming();
        for _ in 0..5 {
            match incoming.next().await {
                Some(Err(e)) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {}
                other => panic!("expected EMFILE, got {other:?}"),
            }
            // Back off, as the docs say.
            sleep(Duration::from_millis(5)).await;
        }
        drop(filler);
        for _ in 0..4 {
            let s = timeout(Duration::from_secs(5), incoming.next())
                .await
                .expect("the stream recovers once fds are free");
            s.unwrap().unwrap();
        }
        drop(clients);
    });
}
