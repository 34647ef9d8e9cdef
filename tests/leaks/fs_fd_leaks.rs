//! Fd accounting for `coil::fs`: opens cancelled by a zero timeout leak
//! nothing, dropped and closed `File`s release their fds (issue 3 item 3).
//!
//! Called by `main.rs`'s single test: the counts are process-wide.

use crate::support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coil::fs::{self, File, OpenOptions};
use coil::runtime::DriverChoice;

use support::open_fds;

/// Waits (yielding to the loop, which processes late completions) until the
/// fd count is back to `before` and has stayed there for 50 ms: io_uring
/// orphans and epoll pool jobs (which may still be queued, so the count can
/// dip before it rises) both finish on their own time.
async fn settle(before: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut since: Option<Instant> = None;
    loop {
        let now = open_fds();
        if Instant::now() > deadline {
            return now;
        }
        if now <= before && coil::runtime::stats().is_some_and(|s| s.io_ops == 0) {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() >= Duration::from_millis(50) {
                return now;
            }
        } else {
            since = None;
        }
        coil::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) fn no_fd_leaks() {
    support::run_watched(|| {
        let dir = std::env::temp_dir().join(format!("coil-fsleak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), vec![7u8; 64 << 10]).unwrap();
        for choice in [DriverChoice::Uring, DriverChoice::Epoll] {
            let rt = coil::Runtime::builder().driver(choice).build().unwrap();
            rt.block_on(cancelled_opens(dir.clone(), choice));
            rt.block_on(dropped_files(dir.clone(), choice));
            drop(rt);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

async fn cancelled_opens(dir: PathBuf, choice: DriverChoice) {
    // Warm up the blocking pool and the io_uring probe: their own fds (none
    // today, but threads and rings may open some) are not leaks.
    let _ = File::open(dir.join("f")).await.unwrap();
    let w = OpenOptions::new()
        .write(true)
        .open(dir.join("f"))
        .await
        .unwrap();
    w.set_len(64 << 10).await.unwrap();
    drop(w);
    let before = open_fds();
    let mut completed = 0;
    for i in 0..1000 {
        let p = dir.join("f");
        let open = async move {
            if i % 2 == 0 {
                File::open(p).await
            } else {
                OpenOptions::new().read(true).write(true).open(p).await
            }
        };
        if let Some(f) = support::poll_once(open).await {
            // The open won the race: it must be a real, working file.
            let f = f.unwrap();
            completed += 1;
            drop(f);
        }
    }
    // Plain opens dropped right after their first poll, counted: submitted
    // (or handed to the pool) and abandoned before any completion.
    let mut abandoned = 0;
    for i in 0..1000u32 {
        let open = File::open(dir.join("f"));
        if support::poll_once(open).await.is_none() {
            abandoned += 1;
        }
        if i % 100 == 0 {
            coil::task::yield_now().await;
        }
    }
    eprintln!("{choice:?}: {abandoned}/1000 opens dropped after their first poll");
    let peak = open_fds();
    let after = settle(before).await;
    eprintln!(
        "{choice:?}: {completed}/1000 opens completed on their first poll; fds before {before}, \
         right after the loop {peak}, settled {after}"
    );
    assert!(
        after <= before,
        "{choice:?}: cancelled opens leaked {} fds ({completed} of 1000 completed on their first poll)",
        after.saturating_sub(before)
    );
    // Still works afterwards.
    assert_eq!(fs::read(dir.join("f")).await.unwrap().len(), 64 << 10);
}

async fn dropped_files(dir: PathBuf, choice: DriverChoice) {
    let before = open_fds();
    let mut files = Vec::new();
    for _ in 0..500 {
        files.push(File::open(dir.join("f")).await.unwrap());
    }
    assert!(open_fds() >= 500, "the 500 files are open");
    // Some with a read in flight when dropped: the fd closes after it completes.
    for f in files.iter().take(50) {
        let _ = support::poll_once(f.read_at(Vec::with_capacity(4096), 0)).await;
    }
    drop(files);
    let after = settle(before).await;
    assert!(after <= before, "{choice:?}: dropped Files leaked fds");
    // Explicit close, also with an orphaned op still holding the fd.
    let mut closes = 0;
    for i in 0..200 {
        let f = File::open(dir.join("f")).await.unwrap();
        if i % 2 == 0 {
            let _ = support::poll_once(f.read_at(Vec::with_capacity(4096), 0)).await;
        }
        f.close().await.unwrap();
        closes += 1;
    }
    let after = settle(before).await;
    assert!(
        after <= before,
        "{choice:?}: closed Files leaked fds ({closes} closes)"
    );
}
