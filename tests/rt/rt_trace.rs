//! The timeline trace (`runtime::Builder::trace`, `COIL_TRACE`; issue 17
//! item 3): a program that spawns, sleeps, talks TCP on 127.0.0.1 and reads
//! a file writes Chrome trace-event JSON; the test parses it (a small JSON
//! reader below: no dependency) and checks the poll slices of each task,
//! that every op's flow start has its end, timer and park events.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use coil::io::BufResult;
use coil::net::{TcpListener, TcpStream};
use coil::runtime::Builder;

/// A JSON value, as much as the test needs.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(HashMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }
}

/// Parses one JSON document (panics, naming the offset, on bad input).
fn parse(text: &str) -> Json {
    let b = text.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing bytes at {i}");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn expect(b: &[u8], i: &mut usize, c: u8) {
    ws(b, i);
    assert_eq!(b.get(*i), Some(&c), "expected {:?} at {i}", c as char);
    *i += 1;
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut m = HashMap::new();
            ws(b, i);
            if b[*i] == b'}' {
                *i += 1;
                return Json::Obj(m);
            }
            loop {
                ws(b, i);
                let Json::Str(k) = value(b, i) else {
                    panic!("object key at {i}")
                };
                expect(b, i, b':');
                m.insert(k, value(b, i));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b'}' => return Json::Obj(m),
                    c => panic!("{:?} in an object at {i}", c as char),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut v = Vec::new();
            ws(b, i);
            if b[*i] == b']' {
                *i += 1;
                return Json::Arr(v);
            }
            loop {
                v.push(value(b, i));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b']' => return Json::Arr(v),
                    c => panic!("{:?} in an array at {i}", c as char),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = String::new();
            loop {
                let c = b[*i];
                *i += 1;
                match c {
                    b'"' => return Json::Str(s),
                    b'\\' => {
                        let e = b[*i];
                        *i += 1;
                        match e {
                            b'u' => {
                                let hex = std::str::from_utf8(&b[*i..*i + 4]).unwrap();
                                s.push(
                                    char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap(),
                                );
                                *i += 4;
                            }
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            other => s.push(other as char),
                        }
                    }
                    _ => {
                        // A UTF-8 sequence: copy it whole.
                        let start = *i - 1;
                        let mut end = *i;
                        while end < b.len() && (b[end] & 0xC0) == 0x80 {
                            end += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..end]).unwrap());
                        *i = end;
                    }
                }
            }
        }
        b't' | b'f' | b'n' => {
            for (word, v) in [
                ("true", Json::Bool(true)),
                ("false", Json::Bool(false)),
                ("null", Json::Null),
            ] {
                if b[*i..].starts_with(word.as_bytes()) {
                    *i += word.len();
                    return v;
                }
            }
            panic!("bad literal at {i}")
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            Json::Num(
                std::str::from_utf8(&b[start..*i])
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("number at {start}: {e}")),
            )
        }
    }
}

#[test]
fn the_json_reader_reads_what_it_must() {
    let v =
        parse(r#" [ {"a": -1.5e3, "b": "x\"\u00e9é", "c": [true, false, null], "d": {}} , [] ] "#);
    let Json::Arr(items) = &v else { panic!() };
    assert_eq!(items[0].num("a"), Some(-1500.0));
    assert_eq!(items[0].str("b"), Some("x\"éé"));
    assert_eq!(
        items[0].get("c"),
        Some(&Json::Arr(vec![
            Json::Bool(true),
            Json::Bool(false),
            Json::Null
        ]))
    );
    assert_eq!(items[1], Json::Arr(vec![]));
}

#[track_caller]
fn spawn_named<F: std::future::Future + 'static>(name: &str, f: F) -> coil::Task<F::Output> {
    coil::task::Builder::new().name(name).spawn(f)
}

/// A file of this test's own, removed when dropped.
struct TempPath(std::path::PathBuf);

impl TempPath {
    fn new(what: &str) -> TempPath {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempPath(
            std::env::temp_dir().join(format!("coil-trace-test-{}-{what}-{n}", std::process::id())),
        )
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

driver_test! {
    fn a_traced_program_writes_poll_slices_and_matched_flows(rt) {
        let trace = TempPath::new("trace.json");
        let data = TempPath::new("data");
        std::fs::write(&data.0, b"hello trace").unwrap();
        let traced = Builder::new()
            .driver(support::choice_like(rt))
            .trace(&trace.0)
            .build()
            .unwrap();
        let loop_id = traced.block_on(async {
            // The sleep starts in the task's first poll, and is long enough
            // that the loop parks for it and its timer fires, even on a loaded
            // machine (a deadline already passed at the first poll completes
            // at once, with no timer and maybe no park).
            let sleeper = spawn_named("sleeper", async {
                coil::time::sleep(Duration::from_millis(20)).await;
            });
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn_named("server", async move {
                let (s, _) = listener.accept().await.unwrap();
                let BufResult(n, buf) = s.read(Vec::with_capacity(64)).await;
                let BufResult(r, _) = s.write_all(buf[..n.unwrap()].to_vec()).await;
                r.unwrap();
            });
            let client = spawn_named("client", async move {
                let c = TcpStream::connect(addr).await.unwrap();
                let BufResult(r, _) = c.write_all(b"ping".to_vec()).await;
                r.unwrap();
                let BufResult(n, _) = c.read(Vec::with_capacity(64)).await;
                assert_eq!(n.unwrap(), 4);
            });
            let path = data.0.clone();
            let reader = spawn_named("reader", async move { coil::fs::read(path).await.unwrap() });
            sleeper.await.unwrap();
            server.await.unwrap();
            client.await.unwrap();
            assert_eq!(reader.await.unwrap(), b"hello trace");
            coil::Handle::current().metrics();
            coil::Handle::current()
        });
        let loop_id = format!("{loop_id:?}");
        drop(traced);

        let text = std::fs::read_to_string(&trace.0).unwrap();
        let (events, tids) = check_trace(&text, Some(std::process::id()));
        assert_eq!(tids.len(), 1, "one loop, one track");
        assert!(loop_id.contains(&format!("runtime: {}", tids[0])), "{loop_id}");
        let of = |ph: &'static str| events.iter().filter(move |e| e.str("ph") == Some(ph));
        // Every task polled at least once, each poll a slice with a duration.
        for name in ["sleeper", "server", "client", "reader"] {
            let polls: Vec<_> = of("X").filter(|e| e.str("name") == Some(name)).collect();
            assert!(!polls.is_empty(), "no poll slice for {name}:\n{text}");
            for p in polls {
                assert_eq!(p.str("cat"), Some("poll"));
                assert!(p.num("ts").unwrap() >= 0.0 && p.num("dur").unwrap() >= 0.0);
            }
        }
        assert!(of("i").any(|e| e.str("name") == Some("timers fired")), "{text}");
    }
}

/// Checks what every trace must satisfy and returns its events and its
/// tracks (loop ids): one process (`pid`, if given), a `thread_name` and at
/// least one task poll slice and one park per track, and every flow start
/// (an op submitted) has exactly one end with the same id, no earlier.
fn check_trace(text: &str, pid: Option<u32>) -> (Vec<Json>, Vec<u64>) {
    let Json::Arr(events) = parse(text) else {
        panic!("not an array:\n{text}")
    };
    let mut tids = Vec::new();
    for e in &events {
        if let Some(pid) = pid {
            assert_eq!(e.num("pid"), Some(f64::from(pid)), "{e:?}");
        }
        let tid = e.num("tid").unwrap() as u64;
        if !tids.contains(&tid) {
            tids.push(tid);
        }
        assert!(e.str("ph").is_some() && e.str("name").is_some(), "{e:?}");
    }
    let on = |tid: u64, ph: &'static str, cat: &'static str| {
        events.iter().any(move |e| {
            e.num("tid") == Some(tid as f64) && e.str("ph") == Some(ph) && e.str("cat") == Some(cat)
        })
    };
    for &tid in &tids {
        assert!(on(tid, "X", "poll"), "no task poll on loop {tid}");
        assert!(on(tid, "X", "park"), "no park on loop {tid}");
        let named = events
            .iter()
            .any(|e| e.num("tid") == Some(tid as f64) && e.str("name") == Some("thread_name"));
        assert!(named, "loop {tid} has no thread_name");
    }
    let of = |ph: &'static str| events.iter().filter(move |e| e.str("ph") == Some(ph));
    let mut starts: HashMap<u64, f64> = HashMap::new();
    for s in of("s") {
        assert!(
            starts
                .insert(s.num("id").unwrap() as u64, s.num("ts").unwrap())
                .is_none()
        );
    }
    assert!(!starts.is_empty(), "no op was traced");
    for f in of("f") {
        let id = f.num("id").unwrap() as u64;
        let began = starts
            .remove(&id)
            .unwrap_or_else(|| panic!("flow end {id} without start"));
        assert!(f.num("ts").unwrap() >= began);
    }
    assert!(starts.is_empty(), "flows without end: {starts:?}");
    (events, tids)
}

/// The tour (`examples/tour.rs`) run with `COIL_TRACE`: `.ci/run`'s tour tier
/// runs it so and passes the file in `COIL_TOUR_TRACE`.
#[test]
#[ignore = "needs the tour's trace: .ci/run's tour tier sets COIL_TOUR_TRACE"]
fn the_tour_writes_a_trace_with_polls_and_matched_flows() {
    let path = std::env::var_os("COIL_TOUR_TRACE")
        .expect("COIL_TOUR_TRACE=<file written by COIL_TRACE=<file> cargo run --example tour>");
    let text = std::fs::read_to_string(path).unwrap();
    let (events, tids) = check_trace(&text, None);
    let polls = events
        .iter()
        .filter(|e| e.str("cat") == Some("poll"))
        .count();
    let flows = events.iter().filter(|e| e.str("ph") == Some("s")).count();
    println!(
        "tour trace: {} events, {polls} polls, {flows} ops, loops {tids:?}",
        events.len()
    );
}
