//! W6 file read (`file`, benches/WORKLOADS.md): 200 000 positional 4 KiB reads of a
//! page-cached 256 MiB file by 64 tasks, for coil and its peers.
//!
//! * `coil-benches file [--quick] [reps=k]` creates the file once (in the
//!   temp dir, from the content definition; `cat` puts it in the page
//!   cache), runs every peer in a child process pinned to CPU 0 and prints
//!   a table and the ratios.
//! * `coil-benches file peer=<name> [size_mib=.. reads=.. tasks=..]` runs
//!   once in this process and prints one JSON line.
//!
//! Rows (`params.impl`): `coil/uring` (`File::read_exact_at`, one shared
//! file, IORING_OP_READ), `coil/epoll` (the same API; page-cached reads via
//! `preadv2(RWF_NOWAIT)`, else the blocking pool), `coil/epoll@pool`
//! (`coil::blocking::spawn_blocking` + `pread`: what the pool alone costs),
//! `tokio` (`tokio::fs::File` per task, `seek` + `read_exact`),
//! `tokio@alt` (`spawn_blocking` + `pread`), `monoio`
//! (`fs::File::read_exact_at`, io_uring), `raw-uring` (io_uring `Read`, 64
//! reads in flight, no runtime) and `std-pread` (one thread, tasks = 1).
//! `coil/uring@fixed` is `coil/uring` with each task's buffer a `FixedBuf`
//! of one registered `coil::io::FixedBufPool` (IORING_OP_READ_FIXED), and
//! `raw-uring@fixed` is `raw-uring` with its buffers registered as one
//! region (`ReadFixed`).
//! `--quick`: a 16 MiB file and 2 000 reads (the checksum is then checked
//! against the value computed from the content definition, not the spec's
//! constant).

use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness;
use crate::opts::Opts;
use crate::report::{self, Json, Outcome};
use crate::splitmix::SplitMix64;

/// W6 read offsets.
const FILE_SEED: u64 = 0x5EED_0000_0000_0006;
/// W6 file content.
const FILE_CONTENT_SEED: u64 = 0xDA7A_0000_0000_0001;
/// SplitMix64's increment.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// The spec's checksum for the full parameters.
const EXPECTED: u64 = 12_284_273_504_692_962_122;
const BLOCK: usize = 4096;

/// Every W6 row, in table order.
pub const PEERS: [&str; 10] = [
    "coil/uring",
    "coil/uring@fixed",
    "coil/epoll",
    "coil/epoll@pool",
    "tokio",
    "tokio@alt",
    "monoio",
    "raw-uring",
    "raw-uring@fixed",
    "std-pread",
];

#[derive(Debug, Clone, Copy)]
struct Params {
    size: u64,
    reads: usize,
    tasks: usize,
}

impl Params {
    fn from(opts: &Opts) -> Result<Params, String> {
        let mib = opts.get_u64("size_mib", if opts.quick { 16 } else { 256 })?;
        let size = mib.max(1) << 20;
        let reads = opts.get_u64("reads", if opts.quick { 2_000 } else { 200_000 })? as usize;
        let tasks = opts.get_u64("tasks", 64)?.max(1) as usize;
        Ok(Params { size, reads, tasks })
    }

    fn path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("coil-bench-w6-{}mib.bin", self.size >> 20))
    }

    fn full_spec(&self) -> bool {
        self.size == 256 << 20 && self.reads == 200_000
    }
}

/// `off[i] = (next() % blocks) * 4096` from one SplitMix64(FILE_SEED) stream.
fn offsets(p: &Params) -> Vec<u64> {
    let blocks = p.size / BLOCK as u64;
    let mut r = SplitMix64::new(FILE_SEED);
    (0..p.reads)
        .map(|_| (r.next() % blocks) * BLOCK as u64)
        .collect()
}

/// Word k of the file is the k-th output of SplitMix64(FILE_CONTENT_SEED):
/// a fresh generator at `seed + k * gamma`.
fn word(k: u64) -> u64 {
    SplitMix64::new(FILE_CONTENT_SEED.wrapping_add(k.wrapping_mul(GAMMA))).next()
}

fn expected_checksum(offs: &[u64]) -> u64 {
    offs.iter().fold(0u64, |s, &o| s.wrapping_add(word(o / 8)))
}

/// Creates the file if it is missing or wrong, then reads it with `cat` so
/// that it is page-cached.
fn prepare(p: &Params) -> Result<PathBuf, String> {
    let path = p.path();
    let good = std::fs::File::open(&path).ok().is_some_and(|f| {
        let mut w = [0u8; 8];
        let len_ok = f.metadata().is_ok_and(|m| m.len() == p.size);
        let last = p.size / 8 - 1;
        len_ok
            && f.read_exact_at(&mut w, 0).is_ok()
            && u64::from_le_bytes(w) == word(0)
            && f.read_exact_at(&mut w, last * 8).is_ok()
            && u64::from_le_bytes(w) == word(last)
    });
    if !good {
        eprintln!(
            "coil-benches: creating {} ({} MiB)",
            path.display(),
            p.size >> 20
        );
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?,
        );
        let mut r = SplitMix64::new(FILE_CONTENT_SEED);
        for _ in 0..p.size / 8 {
            f.write_all(&r.next().to_le_bytes())
                .map_err(|e| format!("write: {e}"))?;
        }
        f.into_inner()
            .map_err(|e| format!("flush: {e}"))?
            .sync_all()
            .map_err(|e| format!("sync: {e}"))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("rename: {e}"))?;
    }
    let st = std::process::Command::new("cat")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cat: {e}"))?;
    if !st.success() {
        return Err(format!("cat {} failed: {st}", path.display()));
    }
    Ok(path)
}

/// The reads of task `t`: i = t, t + tasks, t + 2·tasks, ...
fn task_offsets(offs: &[u64], t: usize, tasks: usize) -> Vec<u64> {
    offs.iter().skip(t).step_by(tasks).copied().collect()
}

fn first_word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("a 4 KiB block"))
}

type Run = Result<(Duration, u64), String>;

/// coil: one shared `File`, each task its own 4 KiB buffer: a `Vec`, or with
/// `fixed` a `FixedBuf` of one registered pool of `tasks` buffers.
fn coil_file(
    path: &Path,
    p: &Params,
    offs: &[u64],
    driver: coil::runtime::DriverChoice,
    fixed: bool,
) -> Run {
    let rt = coil::Runtime::builder()
        .driver(driver)
        .build()
        .map_err(|e| format!("coil runtime: {e}"))?;
    let per_task: Vec<Vec<u64>> = (0..p.tasks)
        .map(|t| task_offsets(offs, t, p.tasks))
        .collect();
    rt.block_on(async move {
        let f = Rc::new(
            coil::fs::File::open(path)
                .await
                .map_err(|e| format!("open: {e}"))?,
        );
        let pool = if fixed {
            let pool = coil::io::FixedBufPool::new(p.tasks, BLOCK)
                .map_err(|e| format!("fixed buffers: {e}"))?;
            if !pool.is_registered() {
                return Err("the fixed-buffer pool was not registered".into());
            }
            Some(pool)
        } else {
            None
        };
        let start = Instant::now();
        let handles: Vec<_> = per_task
            .into_iter()
            .map(|mine| {
                let f = f.clone();
                match &pool {
                    Some(pool) => {
                        let buf = pool.try_take().expect("one buffer per task");
                        coil::spawn(read_task(f, mine, buf, coil::io::FixedBuf::clear))
                    }
                    None => coil::spawn(read_task(f, mine, Vec::with_capacity(BLOCK), Vec::clear)),
                }
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await.map_err(|e| format!("task: {e:?}"))??);
        }
        Ok((start.elapsed(), sum))
    })
}

/// One coil W6 task: its reads, one after another, into `buf` (emptied by
/// `clear` before each).
async fn read_task<B, C>(
    f: Rc<coil::fs::File>,
    mine: Vec<u64>,
    mut buf: B,
    clear: C,
) -> Result<u64, String>
where
    B: coil::io::IoBufMut + Send + std::ops::Deref<Target = [u8]>,
    C: Fn(&mut B),
{
    let mut sum = 0u64;
    for off in mine {
        clear(&mut buf);
        let coil::io::BufResult(r, b) = f.read_exact_at(buf, off).await;
        r.map_err(|e| format!("read at {off}: {e}"))?;
        sum = sum.wrapping_add(first_word(&b));
        buf = b;
    }
    Ok(sum)
}

/// coil's blocking pool alone: `spawn_blocking` + `pread` per read.
fn coil_pool(path: &Path, p: &Params, offs: &[u64]) -> Run {
    let rt = coil::Runtime::builder()
        .driver(coil::runtime::DriverChoice::Epoll)
        .build()
        .map_err(|e| format!("coil runtime: {e}"))?;
    let f = Arc::new(std::fs::File::open(path).map_err(|e| format!("open: {e}"))?);
    let per_task: Vec<Vec<u64>> = (0..p.tasks)
        .map(|t| task_offsets(offs, t, p.tasks))
        .collect();
    rt.block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = per_task
            .into_iter()
            .map(|mine| {
                let f = f.clone();
                coil::spawn(async move {
                    let mut buf = vec![0u8; BLOCK];
                    let mut sum = 0u64;
                    for off in mine {
                        let f = f.clone();
                        let (r, b) = coil::blocking::spawn_blocking(move || {
                            let r = f.read_exact_at(&mut buf, off);
                            (r, buf)
                        })
                        .await
                        .map_err(|e| format!("pool: {e:?}"))?;
                        r.map_err(|e| format!("pread at {off}: {e}"))?;
                        sum = sum.wrapping_add(first_word(&b));
                        buf = b;
                    }
                    Ok::<u64, String>(sum)
                })
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await.map_err(|e| format!("task: {e:?}"))??);
        }
        Ok((start.elapsed(), sum))
    })
}

/// tokio::fs: one `File` per task, `seek` + `read_exact`.
fn tokio_fs(path: &Path, p: &Params, offs: &[u64]) -> Run {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let mut files = Vec::new();
        for _ in 0..p.tasks {
            files.push(
                tokio::fs::File::open(path)
                    .await
                    .map_err(|e| format!("open: {e}"))?,
            );
        }
        let start = Instant::now();
        let handles: Vec<_> = files
            .into_iter()
            .enumerate()
            .map(|(t, mut f)| {
                let mine = task_offsets(offs, t, p.tasks);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; BLOCK];
                    let mut sum = 0u64;
                    for off in mine {
                        f.seek(std::io::SeekFrom::Start(off))
                            .await
                            .map_err(|e| format!("seek: {e}"))?;
                        f.read_exact(&mut buf)
                            .await
                            .map_err(|e| format!("read at {off}: {e}"))?;
                        sum = sum.wrapping_add(first_word(&buf));
                    }
                    Ok::<u64, String>(sum)
                })
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await.map_err(|e| format!("task: {e}"))??);
        }
        Ok((start.elapsed(), sum))
    })
}

/// tokio, the "alt" column: `spawn_blocking` + `pread` on one shared file.
fn tokio_alt(path: &Path, p: &Params, offs: &[u64]) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let f = Arc::new(std::fs::File::open(path).map_err(|e| format!("open: {e}"))?);
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|t| {
                let mine = task_offsets(offs, t, p.tasks);
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; BLOCK];
                    let mut sum = 0u64;
                    for off in mine {
                        let f = f.clone();
                        let (r, b) = tokio::task::spawn_blocking(move || {
                            let r = f.read_exact_at(&mut buf, off);
                            (r, buf)
                        })
                        .await
                        .map_err(|e| format!("pool: {e}"))?;
                        r.map_err(|e| format!("pread at {off}: {e}"))?;
                        sum = sum.wrapping_add(first_word(&b));
                        buf = b;
                    }
                    Ok::<u64, String>(sum)
                })
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await.map_err(|e| format!("task: {e}"))??);
        }
        Ok((start.elapsed(), sum))
    })
}

/// monoio on io_uring: `fs::File::read_exact_at`, one shared file.
fn monoio_fs(path: &Path, p: &Params, offs: &[u64]) -> Run {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("monoio runtime: {e}"))?;
    rt.block_on(async {
        let f = Rc::new(
            monoio::fs::File::open(path)
                .await
                .map_err(|e| format!("open: {e}"))?,
        );
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|t| {
                let mine = task_offsets(offs, t, p.tasks);
                let f = f.clone();
                monoio::spawn(async move {
                    let mut buf = vec![0u8; BLOCK];
                    let mut sum = 0u64;
                    for off in mine {
                        let (r, b) = f.read_exact_at(buf, off).await;
                        r.map_err(|e| format!("read at {off}: {e}"))?;
                        sum = sum.wrapping_add(first_word(&b));
                        buf = b;
                    }
                    Ok::<u64, String>(sum)
                })
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await?);
        }
        Ok((start.elapsed(), sum))
    })
}

/// No runtime: io_uring `Read` (with `fixed`: `ReadFixed` from one registered
/// region holding every slot's buffer), one slot (buffer) per "task", all
/// slots in flight; each completion resubmits its slot's next read.
fn raw_uring(path: &Path, p: &Params, offs: &[u64], fixed: bool) -> Run {
    use io_uring::{IoUring, opcode, types};
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| format!("open: {e}"))?;
    let fd = types::Fd(f.as_raw_fd());
    let slots = p.tasks.min(offs.len()).max(1);
    // One allocation: slot `s`'s buffer at `s * BLOCK` (one registered
    // region). Declared before the ring, so dropped after it.
    let mut mem = vec![0u8; slots * BLOCK];
    let mut ring = IoUring::new((slots as u32).next_power_of_two().max(8))
        .map_err(|e| format!("io_uring: {e}"))?;
    let per_slot: Vec<Vec<u64>> = (0..slots).map(|t| task_offsets(offs, t, slots)).collect();
    let mut next = vec![0usize; slots];
    if fixed {
        let region = libc::iovec {
            iov_base: mem.as_mut_ptr().cast(),
            iov_len: mem.len(),
        };
        // SAFETY: `mem` outlives the ring (dropped after it), and is not
        // moved or resized while registered.
        unsafe { ring.submitter().register_buffers(&[region]) }
            .map_err(|e| format!("register_buffers: {e}"))?;
    }
    let start = Instant::now();
    let mut sum = 0u64;
    let mut in_flight = 0usize;
    let push = |ring: &mut IoUring, mem: &mut [u8], s: usize, off: u64| {
        let ptr = mem[s * BLOCK..].as_mut_ptr();
        let e = if fixed {
            opcode::ReadFixed::new(fd, ptr, BLOCK as u32, 0)
                .offset(off)
                .build()
        } else {
            opcode::Read::new(fd, ptr, BLOCK as u32).offset(off).build()
        };
        // SAFETY: the buffer of slot `s` is not touched again until this
        // read's completion has been reaped, and `mem` outlives the ring's
        // use of it (every read is reaped before returning).
        unsafe { ring.submission().push(&e.user_data(s as u64)) }.map_err(|_| "SQ full".to_string())
    };
    for s in 0..slots {
        if let Some(&off) = per_slot[s].first() {
            push(&mut ring, &mut mem, s, off)?;
            next[s] = 1;
            in_flight += 1;
        }
    }
    while in_flight > 0 {
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        let done: Vec<(usize, i32)> = ring
            .completion()
            .map(|c| (c.user_data() as usize, c.result()))
            .collect();
        for (s, res) in done {
            in_flight -= 1;
            if res != BLOCK as i32 {
                return Err(format!("raw read: result {res}"));
            }
            sum = sum.wrapping_add(first_word(&mem[s * BLOCK..]));
            if let Some(&off) = per_slot[s].get(next[s]) {
                next[s] += 1;
                push(&mut ring, &mut mem, s, off)?;
                in_flight += 1;
            }
        }
    }
    Ok((start.elapsed(), sum))
}

/// The synchronous ceiling: one thread, pread in order.
fn std_pread(path: &Path, offs: &[u64]) -> Run {
    let f = std::fs::File::open(path).map_err(|e| format!("open: {e}"))?;
    let mut buf = vec![0u8; BLOCK];
    let start = Instant::now();
    let mut sum = 0u64;
    for &off in offs {
        f.read_exact_at(&mut buf, off)
            .map_err(|e| format!("pread at {off}: {e}"))?;
        sum = sum.wrapping_add(first_word(&buf));
    }
    Ok((start.elapsed(), sum))
}

fn impl_of(peer: &str) -> &'static str {
    match peer {
        "coil/uring" | "coil/epoll" => "coil::fs::File::read_exact_at",
        "coil/uring@fixed" => "coil::fs::File::read_exact_at+FixedBuf (READ_FIXED)",
        "coil/epoll@pool" => "coil::blocking::spawn_blocking+pread",
        "tokio" => "tokio::fs::File seek+read_exact",
        "tokio@alt" => "spawn_blocking+pread",
        "monoio" => "monoio::fs::File::read_exact_at",
        "raw-uring" => "io_uring Read",
        "raw-uring@fixed" => "io_uring ReadFixed",
        _ => "pread",
    }
}

/// One run in this process.
fn single(peer: &str, opts: &Opts) -> Outcome {
    let pin = harness::pin_self();
    let r = (|| -> Result<Outcome, String> {
        let p = Params::from(opts)?;
        let path = prepare(&p)?;
        let offs = offsets(&p);
        let want = expected_checksum(&offs);
        let tasks = if peer == "std-pread" { 1 } else { p.tasks };
        use coil::runtime::DriverChoice;
        let (elapsed, sum) = match peer {
            "coil/uring" => coil_file(&path, &p, &offs, DriverChoice::Uring, false),
            "coil/uring@fixed" => coil_file(&path, &p, &offs, DriverChoice::Uring, true),
            "coil/epoll" => coil_file(&path, &p, &offs, DriverChoice::Epoll, false),
            "coil/epoll@pool" => coil_pool(&path, &p, &offs),
            "tokio" => tokio_fs(&path, &p, &offs),
            "tokio@alt" => tokio_alt(&path, &p, &offs),
            "monoio" => monoio_fs(&path, &p, &offs),
            "raw-uring" => raw_uring(&path, &p, &offs, false),
            "raw-uring@fixed" => raw_uring(&path, &p, &offs, true),
            "std-pread" => std_pread(&path, &offs),
            other => Err(format!("unknown W6 peer {other:?} (known: {PEERS:?})")),
        }?;
        let secs = elapsed.as_secs_f64();
        let ok = sum == want && (!p.full_spec() || sum == EXPECTED);
        Ok(Outcome {
            peer: peer.to_string(),
            workload: "file".into(),
            params: vec![
                ("size".into(), Json::Int(p.size as i64)),
                ("reads".into(), Json::Int(p.reads as i64)),
                ("tasks".into(), Json::Int(tasks as i64)),
                ("impl".into(), Json::Str(impl_of(peer).into())),
                ("pin".into(), Json::Str(pin.into())),
            ],
            metric: "reads_per_s".into(),
            value: Some(p.reads as f64 / secs),
            unit: "reads/s".into(),
            ok,
            elapsed_ms: secs * 1e3,
            extra: vec![
                ("checksum".into(), Json::Str(sum.to_string())),
                ("expected".into(), Json::Str(want.to_string())),
            ],
            error: None,
        })
    })();
    r.unwrap_or_else(|e| Outcome::error(peer, "file", &e))
}

/// `coil-benches file ...`: one run (with `peer=`) or the W6 suite.
pub fn main(opts: &Opts) -> std::process::ExitCode {
    use std::process::ExitCode;
    if let Some(peer) = opts.peer() {
        return single(peer, opts).emit();
    }
    match suite(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("coil-benches: {e}");
            ExitCode::from(2)
        }
    }
}

fn suite(opts: &Opts) -> Result<bool, String> {
    let p = Params::from(opts)?;
    prepare(&p)?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let reps = opts.reps()?;
    let timeout = Duration::from_secs(opts.get_u64("timeout_s", 120)?);
    let mut rows: Vec<(&str, Vec<String>)> = PEERS.iter().map(|&p| (p, Vec::new())).collect();
    for rep in 0..reps {
        for (peer, lines) in &mut rows {
            let r = harness::run_child(&exe, &opts.child_args("file", peer), peer, "file", timeout);
            eprintln!("[file {}/{reps} {peer}] {}", rep + 1, r.line);
            lines.push(r.line);
        }
    }
    let med: Vec<(&str, Option<f64>, bool)> = rows
        .iter()
        .map(|(peer, lines)| {
            let vals: Vec<f64> = lines
                .iter()
                .filter_map(|l| report::field_f64(l, "value"))
                .collect();
            let ok = lines.iter().all(|l| report::field(l, "ok") == Some("true"));
            let m = (!vals.is_empty()).then(|| report::median(&vals));
            (*peer, m, ok)
        })
        .collect();
    println!(
        "\nW6 file: {} reads of 4 KiB, {} MiB page-cached file, {} tasks, median of {reps}\n",
        p.reads,
        p.size >> 20,
        p.tasks
    );
    println!("| peer | impl | kreads/s | ok |");
    println!("|---|---|---|---|");
    for (peer, m, ok) in &med {
        let v = m.map_or("-".to_string(), |v| format!("{:.0}", v / 1e3));
        println!("| {peer} | {} | {v} | {ok} |", impl_of(peer));
    }
    let get = |n: &str| med.iter().find(|r| r.0 == n).and_then(|r| r.1);
    println!("\nRATIOS (higher is better for coil)");
    for (a, b) in [
        ("coil/uring", "tokio"),
        ("coil/epoll", "tokio"),
        ("coil/uring", "tokio@alt"),
        ("coil/epoll", "tokio@alt"),
        ("coil/epoll@pool", "tokio@alt"),
        ("coil/uring", "monoio"),
        ("coil/uring", "raw-uring"),
        ("coil/uring@fixed", "coil/uring"),
        ("coil/uring@fixed", "raw-uring"),
        ("raw-uring@fixed", "raw-uring"),
        ("coil/uring", "std-pread"),
        ("coil/epoll", "std-pread"),
    ] {
        match (get(a), get(b)) {
            (Some(x), Some(y)) => println!("  {a} / {b}: {:.2}x", x / y),
            _ => println!("  {a} / {b}: -"),
        }
    }
    Ok(med.iter().all(|r| r.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_and_checksum_follow_the_spec() {
        let p = Params {
            size: 256 << 20,
            reads: 200_000,
            tasks: 64,
        };
        let offs = offsets(&p);
        assert_eq!(&offs[..3], &[112_582_656, 14_123_008, 98_234_368]);
        assert_eq!(expected_checksum(&offs), EXPECTED);
        let mut r = SplitMix64::new(FILE_CONTENT_SEED);
        for k in 0..5 {
            assert_eq!(r.next(), word(k));
        }
    }
}
