//! W9 idle connections (benches/WORKLOADS.md): what a server pays to keep many
//! quiet connections, each with a read waiting, and to wake them all at once.
//!
//! The servers are W5's (`echo peer=<name> port=P`, echo.rs: the same echo loop
//! with a 4 KiB read buffer), plus `impl=` for coil's read API. This file adds the
//! client and the suite:
//!
//! * `coil-benches idle-client peer=<name> port=P server_pid=PID [conns=8000]
//!   [rounds=5]` — one thread, blocking setup then raw level-triggered epoll; one
//!   JSON line. It connects a probe socket (the server is listening), reads the
//!   server's RSS (`/proc/PID/statm`: `rss_before`), opens `conns` connections in
//!   batches of 256 (each batch: connect, one 64-byte message each, read its echo,
//!   so every server task is parked in a read and the accept queue never
//!   overflows), reads the RSS again (`rss_idle`): metric `bytes_per_conn` =
//!   (rss_idle − rss_before) / conns. Then `rounds` wake rounds: one 64-byte
//!   message on every connection at once, timed until every echo is back and
//!   checked; `wake_ms` is the median round, `server_cpu_ms` the median server CPU
//!   per round (the sum of `/proc/PID/task/*/schedstat` run times, ns).
//! * `coil-benches idle [servers=a,b] [conns=8000] [rounds=5] [reps=1]` — every
//!   server under `taskset -c 0`, the client under `taskset -c 1`; table + ratios.
//!
//! The RSS figures include the probe connection (accepted or not when
//! `rss_before` is read), at most one connection's worth over `conns`.

use std::os::fd::{IntoRawFd, RawFd};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::echo::{canonical, last_json_line, os_err, pin_to, pinned, spawn_server};
use crate::opts::Opts;
use crate::report::{Json, Outcome, field, field_f64, median};

/// The W9 servers, in table order (coil first: the ratios divide by it). A
/// `peer@impl` row passes `impl=` to the server.
pub const SERVERS: [&str; 9] = [
    "coil/uring@pooled",
    "coil/epoll@pooled",
    "coil/uring@vec",
    "coil/epoll@vec",
    "tokio",
    "monoio",
    "monoio-legacy",
    "raw-epoll@conn-buf",
    "raw-uring-mshot",
];

const MSG: usize = 64;
const BATCH: usize = 256;

/// `Some(exit code)` if `opts` selects W9 (client or suite).
pub fn dispatch(opts: &Opts) -> Option<ExitCode> {
    match opts.workload.as_deref() {
        Some("idle") => Some(suite(opts)),
        Some("idle-client") => Some(client_main(opts)),
        _ => None,
    }
}

/// Raises the soft limit on open files to the hard one (W9 needs conns + a few).
pub fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a live rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// The server's resident set in bytes (`/proc/PID/statm`, field 2 × page size).
fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: plain libc call.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(4096) as u64)
}

/// CPU time of every thread of `pid` so far, in ns (`schedstat` field 1; exact,
/// unlike the clock ticks of `/proc/PID/stat`). Threads that exited are missed:
/// the servers' threads live as long as they do.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let p = t.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(p).ok()?;
        sum += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

fn client_main(opts: &Opts) -> ExitCode {
    let peer = opts.peer().unwrap_or("?").to_string();
    let o = client(&peer, opts).unwrap_or_else(|e| Outcome::error(&peer, "idle", &e));
    o.emit()
}

/// Byte `j` of connection `c`'s message in round `r` (round 0: the setup echo).
fn msg_byte(c: usize, r: usize, j: usize) -> u8 {
    ((j * 31 + c * 7 + r * 13) % 251) as u8
}

fn message(c: usize, r: usize) -> [u8; MSG] {
    std::array::from_fn(|j| msg_byte(c, r, j))
}

fn set_blocking(fd: RawFd, on: bool) -> Result<(), String> {
    // SAFETY: plain fcntl calls on an fd this client owns.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        let fl = if on {
            fl & !libc::O_NONBLOCK
        } else {
            fl | libc::O_NONBLOCK
        };
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl) < 0 {
            return Err(os_err("fcntl"));
        }
    }
    Ok(())
}

/// Sends `msg` on blocking-or-empty socket `fd` (64 bytes always fit).
fn send_all(fd: RawFd, msg: &[u8]) -> Result<(), String> {
    // SAFETY: `msg` is initialised and live.
    let w = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
    if w != msg.len() as isize {
        return Err(format!("send: {w} ({})", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn client(peer: &str, opts: &Opts) -> Result<Outcome, String> {
    use std::io::Read as _;
    pin_to(1);
    raise_nofile();
    let port = opts.get_u64("port", 0)? as u16;
    let pid = opts
        .keys
        .get("server_pid")
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or("idle-client: server_pid=PID is required")?;
    let conns = opts.get_u64("conns", 8000)?.max(1) as usize;
    let rounds = opts.get_u64("rounds", 5)?.max(1) as usize;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let t_start = Instant::now();

    // The probe: the server is listening once a connect succeeds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("connect {addr}: {e}")),
        }
    };
    let rss_before = rss(pid).ok_or("cannot read the server's statm")?;

    let mut fds: Vec<RawFd> = Vec::with_capacity(conns);
    let mut mismatches = 0u64;
    while fds.len() < conns {
        let first = fds.len();
        let n = BATCH.min(conns - first);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            batch.push(s);
        }
        for (i, s) in batch.iter().enumerate() {
            use std::os::fd::AsRawFd;
            send_all(s.as_raw_fd(), &message(first + i, 0))?;
        }
        for (i, mut s) in batch.into_iter().enumerate() {
            let mut got = [0u8; MSG];
            s.read_exact(&mut got)
                .map_err(|e| format!("setup echo on connection {}: {e}", first + i))?;
            mismatches += u64::from(got != message(first + i, 0));
            fds.push(s.into_raw_fd());
        }
    }
    let rss_idle = rss(pid).ok_or("cannot read the server's statm")?;
    let setup_ms = t_start.elapsed().as_secs_f64() * 1e3;

    // SAFETY: plain system call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(os_err("epoll_create1"));
    }
    for (i, &fd) in fds.iter().enumerate() {
        set_blocking(fd, false)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is live for the call.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(os_err("epoll_ctl"));
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut got = vec![[0u8; MSG]; conns];
    let mut have = vec![0usize; conns];
    let mut wake_ms = Vec::with_capacity(rounds);
    let mut cpu_ms = Vec::with_capacity(rounds);
    let mut errors = 0u64;
    for r in 1..=rounds {
        have.iter_mut().for_each(|h| *h = 0);
        let cpu0 = cpu_ns(pid);
        let t0 = Instant::now();
        for (i, &fd) in fds.iter().enumerate() {
            send_all(fd, &message(i, r))?;
        }
        let mut left = conns;
        let round_deadline = t0 + Duration::from_secs(20);
        while left > 0 {
            if Instant::now() > round_deadline {
                return Err(format!("round {r}: {left} echoes missing after 20 s"));
            }
            // SAFETY: `events` has room for its length of entries.
            let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 1000) };
            for ev in &events[..n.max(0) as usize] {
                let i = ev.u64 as usize;
                let buf = &mut got[i][have[i]..];
                // SAFETY: `buf` is writable for its length.
                let k = unsafe { libc::recv(fds[i], buf.as_mut_ptr().cast(), buf.len(), 0) };
                if k <= 0 {
                    if k == 0
                        || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock
                    {
                        errors += 1;
                        // SAFETY: stop watching a dead connection (it stays open).
                        unsafe {
                            libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fds[i], std::ptr::null_mut())
                        };
                        left -= 1;
                    }
                    continue;
                }
                have[i] += k as usize;
                if have[i] == MSG {
                    mismatches += u64::from(got[i] != message(i, r));
                    left -= 1;
                }
            }
        }
        wake_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        if let (Some(a), Some(b)) = (cpu0, cpu_ns(pid)) {
            cpu_ms.push((b - a) as f64 / 1e6);
        }
    }
    let rss_end = rss(pid);
    for fd in fds {
        // SAFETY: the client's own connections, not used again.
        unsafe { libc::close(fd) };
    }
    drop(probe);
    let bytes_per_conn = (rss_idle as f64 - rss_before as f64) / conns as f64;
    let med = |v: &[f64]| (!v.is_empty()).then(|| median(v));
    let num = |x: Option<f64>| x.map_or(Json::Null, Json::Num);
    let mut params = vec![("conns".into(), Json::Int(conns as i64))];
    params.push(("rounds".into(), Json::Int(rounds as i64)));
    if let Some(i) = opts.keys.get("impl") {
        params.push(("impl".into(), Json::Str(i.clone())));
    }
    Ok(Outcome {
        peer: peer.into(),
        workload: "idle".into(),
        params,
        metric: "bytes_per_conn".into(),
        value: Some(bytes_per_conn),
        unit: "B".into(),
        ok: errors == 0 && mismatches == 0,
        elapsed_ms: t_start.elapsed().as_secs_f64() * 1e3,
        extra: vec![
            ("wake_ms".into(), num(med(&wake_ms))),
            ("server_cpu_ms".into(), num(med(&cpu_ms))),
            ("rss_before".into(), Json::Int(rss_before as i64)),
            ("rss_idle".into(), Json::Int(rss_idle as i64)),
            (
                "rss_end".into(),
                rss_end.map_or(Json::Null, |x| Json::Int(x as i64)),
            ),
            ("setup_ms".into(), Json::Num(setup_ms)),
            ("errors".into(), Json::Int(errors as i64)),
            ("mismatches".into(), Json::Int(mismatches as i64)),
        ],
        error: None,
    })
}

// ---------------------------------------------------------------- suite

/// One W9 measurement: server `row` (`peer` or `peer@impl`) on CPU 0, the client
/// on CPU 1; the client's line.
fn run_one(row: &str, extra: &[String]) -> String {
    let err = |m: String| Outcome::error(row, "idle", &m).to_json();
    let (peer, imp) = match row.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (row, None),
    };
    let more: Vec<String> = imp.map(|i| format!("impl={i}")).into_iter().collect();
    let (mut server, port, exe) = match spawn_server(peer, 150, &more) {
        Ok(x) => x,
        Err(e) => return err(e),
    };
    let mut cl = pinned(1, &exe);
    cl.args([
        "idle-client",
        &format!("peer={row}"),
        &format!("port={port}"),
    ])
    .arg(format!("server_pid={}", server.id()))
    .args(extra);
    if let Some(i) = imp {
        cl.arg(format!("impl={i}"));
    }
    let line = match cl.stdin(Stdio::null()).stderr(Stdio::inherit()).output() {
        Err(e) => err(format!("spawn client: {e}")),
        Ok(out) => last_json_line(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|| err("no JSON line from the client".into())),
    };
    let _ = server.kill();
    let _ = server.wait();
    line
}

fn suite(opts: &Opts) -> ExitCode {
    let reps = opts.get_u64("reps", 1).unwrap_or(1).max(1);
    let extra: Vec<String> = ["conns", "rounds"]
        .iter()
        .filter_map(|k| opts.keys.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let rows: Vec<String> = match opts.keys.get("servers") {
        Some(list) => list
            .split(',')
            .filter_map(|r| {
                let (p, i) = r.split_once('@').map_or((r, None), |(p, i)| (p, Some(i)));
                canonical(p).map(|p| i.map_or(p.to_string(), |i| format!("{p}@{i}")))
            })
            .collect(),
        None => SERVERS.iter().map(|s| s.to_string()).collect(),
    };
    eprintln!("coil-benches W9: servers on CPU 0, client on CPU 1, {reps} rep(s), {extra:?}");
    // Interleaved: every row once per rep, so drift on a shared machine hits all rows alike.
    let mut lines: Vec<(String, Vec<String>)> =
        rows.iter().map(|r| (r.clone(), Vec::new())).collect();
    for rep in 0..reps {
        for (r, v) in &mut lines {
            let l = run_one(r, &extra);
            eprintln!("[idle {}/{reps} {r}] {l}", rep + 1);
            v.push(l);
        }
    }
    print!("{}", render(&lines));
    if lines
        .iter()
        .all(|(_, v)| v.iter().all(|l| field(l, "ok") == Some("true")))
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn render(rows: &[(String, Vec<String>)]) -> String {
    use std::fmt::Write as _;
    let med = |v: &[String], k: &str| {
        let xs: Vec<f64> = v.iter().filter_map(|l| field_f64(l, k)).collect();
        (!xs.is_empty()).then(|| median(&xs))
    };
    let f = |x: Option<f64>, d: usize| x.map_or("-".to_string(), |x| format!("{x:.d$}"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nW9 idle connections (median of {} run(s))\n\n| server | B/conn | wake ms | srv cpu ms/round | ok |\n|---|---|---|---|---|",
        rows.first().map_or(0, |r| r.1.len())
    );
    for (p, v) in rows {
        let ok = v.iter().all(|l| field(l, "ok") == Some("true"));
        let _ = writeln!(
            s,
            "| {p} | {} | {} | {} | {} |",
            f(med(v, "value"), 0),
            f(med(v, "wake_ms"), 1),
            f(med(v, "server_cpu_ms"), 1),
            if ok { "yes" } else { "NO" },
        );
    }
    let _ = writeln!(s, "\nW9 RATIOS (peer ÷ coil: higher is better for coil)");
    for (c, cv) in rows.iter().filter(|(p, _)| p.starts_with("coil")) {
        for (p, pv) in rows.iter().filter(|(p, _)| !p.starts_with("coil")) {
            let r = |k: &str| match (med(cv, k), med(pv, k)) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {c} vs {p}: B/conn {}, wake {}, cpu/round {}",
                r("value"),
                r("wake_ms"),
                r("server_cpu_ms")
            );
        }
    }
    s
}
