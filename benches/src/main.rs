//! `coil-benches`: W1 spawn, W2 yield, W3 channel, W4 timers and W7 memory
//! per parked task (the default suite), W5 TCP echo (`echo`, echo.rs), W9 idle connections (`idle`, idle.rs) and W6 file reads (`file`, file.rs)
//! of `benches/WORKLOADS.md`, and W8a/W8b multi-core (`multicore`,
//! multicore.rs), for coil (io_uring and epoll drivers)
//! beside tokio current_thread, monoio (io_uring and legacy), glommio and smol.
//!
//! * `coil-benches [--quick]` runs W1–W4 and W7 for every peer, each
//!   measurement in a child process of this binary pinned to CPU 0, median
//!   of 3 (1 with `--quick`), and prints a table and the RATIOS.
//! * `coil-benches report [out=DIR] [in=FILES]` runs every suite (or reads
//!   saved output) and writes an HTML page of bar charts (chart.rs).
//! * `coil-benches <workload> peer=<name> [key=value ...]` runs once, in this
//!   process, and prints exactly one JSON line (benches/WORKLOADS.md §0).
//!
//! See `benches/README.md`.

mod chart;
mod echo;
mod file;
mod harness;
mod idle;
mod memory;
mod multicore;
mod opts;
mod peers;
mod report;
mod splitmix;
mod table;
mod workloads;

use std::process::ExitCode;

use opts::Opts;
use report::Outcome;
use workloads::WORKLOADS;

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if opts.workload.as_deref() == Some("report") {
        return chart::main(&opts); // every suite, one HTML page
    }
    if opts.workload.as_deref() == Some("file") {
        return file::main(&opts);
    }
    if opts.workload.as_deref() == Some("multicore") {
        return multicore::main(&opts); // W8: its loops pin themselves
    }
    if let Some(code) = idle::dispatch(&opts) {
        return code; // W9: idle client or the W9 suite (its servers are W5's)
    }
    if let Some(code) = echo::dispatch(&opts) {
        return code; // W5: echo server, loadgen, or the W5 suite
    }
    match (opts.workload.as_deref(), opts.peer()) {
        (Some(w), Some(p)) => single(w, p, &opts),
        _ => match suite(&opts) {
            Ok(all_ok) => {
                if all_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(msg) => {
                eprintln!("coil-benches: {msg}");
                ExitCode::from(2)
            }
        },
    }
}

/// One run of one workload for one peer, in this process: one JSON line.
fn single(workload: &str, peer: &str, opts: &Opts) -> ExitCode {
    let pin = harness::pin_self();
    // W3 rows are `peer@impl`: the suffix selects `params.impl`.
    let mut opts = opts.clone();
    let peer = match peer.split_once('@') {
        Some((p, imp)) => {
            opts.keys.insert("impl".into(), imp.into());
            p
        }
        None => peer,
    };
    let opts = &opts;
    let outcome = match peers::by_name(peer) {
        Some(p) => {
            let mut o = workloads::run(workload, p.as_ref(), opts);
            if o.error.is_none() {
                o.params.push(("pin".into(), report::Json::Str(pin.into())));
            }
            o
        }
        None => Outcome::error(
            peer,
            workload,
            &format!("unknown peer (known: {})", peers::names().join(", ")),
        ),
    };
    outcome.emit()
}

/// Every selected (workload, peer) in child processes; table and ratios.
fn suite(opts: &Opts) -> Result<bool, String> {
    let workloads: Vec<&str> = match opts.workload.as_deref() {
        None => WORKLOADS.to_vec(),
        Some(w) => vec![
            *WORKLOADS
                .iter()
                .find(|&&k| k == w)
                .ok_or_else(|| format!("unknown workload {w:?}\n{}", opts::USAGE))?,
        ],
    };
    let all = peers::names();
    let peers: Vec<&'static str> = match opts.peer() {
        None => all,
        Some(p) => {
            let found = peers::by_name(p).ok_or_else(|| format!("unknown peer {p:?}"))?;
            vec![found.name()]
        }
    };
    let start = std::time::Instant::now();
    let (rowed, others): (Vec<&str>, Vec<&str>) = workloads
        .iter()
        .partition(|&&w| w == "channel" || w == "memory");
    let mut results = harness::collect(opts, &others, &peers)?;
    if rowed.contains(&"channel") {
        // W3 has one row per (peer, channel API): `peer@impl`.
        let rows: Vec<&'static str> = peers::CHANNEL_ROWS
            .iter()
            .copied()
            .filter(|r| match opts.peer() {
                None => true,
                Some(p) if p.contains('@') => *r == p,
                Some(_) => peers.iter().any(|p| r.split('@').next() == Some(*p)),
            })
            .collect();
        results.extend(harness::collect(opts, &["channel"], &rows)?);
    }
    if rowed.contains(&"memory") {
        // W7 has one row per (peer, release primitive): `peer@impl`.
        let rows: Vec<String> = memory::rows(&peers)
            .into_iter()
            .filter(|r| match opts.peer() {
                Some(p) if p.contains('@') => r == p,
                _ => true,
            })
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        results.extend(harness::collect(opts, &["memory"], &rows)?);
    }
    let cells = table::aggregate(&results);
    print!("{}", table::render(&cells, &peers, opts.reps()?));
    print!("{}", table::ratios(&cells, &peers));
    print!("{}", table::channel(&cells, opts.reps()?));
    print!("{}", memory::table(&cells, opts.reps()?));
    println!("\ntotal {:.1} s", start.elapsed().as_secs_f64());
    Ok(cells.iter().all(|c| c.ok))
}
