//! [`Builder`]: how many loops, pinned or not, which driver; starts the
//! loops' threads.

use std::io;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use coil_arch::DriverChoice;

use super::{CURRENT, CoreId, Pool, PoolHandle, PoolShared, Slot};
use crate::rt::{self, Handle};
use crate::sync::watch;

/// Builds a [`Pool`].
///
/// ```
/// use coil::pool::Pool;
/// use coil::runtime::DriverChoice;
///
/// let pool = Pool::builder()
///     .loops(2)
///     .driver(DriverChoice::Epoll)
///     .drain_timeout(std::time::Duration::from_secs(1))
///     .build()?;
/// assert_eq!(pool.len(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    loops: Option<usize>,
    pin: bool,
    runtime: rt::Builder,
    drain_timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: one loop per available core
    /// (`std::thread::available_parallelism`), not pinned, each loop built by
    /// a default [`runtime::Builder`](crate::runtime::Builder), a 5 s drain
    /// deadline.
    pub fn new() -> Builder {
        Builder {
            loops: None,
            pin: false,
            runtime: rt::Builder::new(),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// The number of loops (at least 1).
    pub fn loops(mut self, n: usize) -> Builder {
        self.loops = Some(n.max(1));
        self
    }

    /// Pins loop `i` to the `i`-th CPU this process may run on (modulo their
    /// number) with `sched_setaffinity`. Off by default.
    pub fn pin_cpus(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }

    /// The driver of every loop; see
    /// [`runtime::Builder::driver`](crate::runtime::Builder::driver).
    pub fn driver(mut self, choice: DriverChoice) -> Builder {
        self.runtime = self.runtime.driver(choice);
        self
    }

    /// Every loop's spin-before-park budget (off by default); see
    /// [`runtime::Builder::spin_before_park`](crate::runtime::Builder::spin_before_park).
    pub fn spin_before_park(mut self, budget: Duration) -> Builder {
        self.runtime = self.runtime.spin_before_park(budget);
        self
    }

    /// The settings each loop's runtime is built with (driver, ring size,
    /// event interval, spin, debug mode).
    pub fn runtime(mut self, builder: rt::Builder) -> Builder {
        self.runtime = builder;
        self
    }

    /// How long the other loops get to drain when one entry of
    /// [`Pool::run`] fails, and every loop when the pool is dropped (zero
    /// while the dropping thread panics). Default 5 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Builder {
        self.drain_timeout = timeout;
        self
    }

    /// Starts the loops, each on its own thread with its own driver.
    ///
    /// # Errors
    ///
    /// The first loop (by index) that could not start, its error prefixed
    /// with its core: no thread, no driver (see
    /// [`runtime::Builder::build`](crate::runtime::Builder::build)), or
    /// `sched_setaffinity` refused. Loops already started are stopped.
    pub fn build(&self) -> io::Result<Pool> {
        let n = match self.loops {
            Some(n) => n,
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let cpus = if self.pin {
            allowed_cpus()?
        } else {
            Vec::new()
        };
        let mut threads = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let (start_tx, start_rx) = mpsc::sync_channel(1);
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let runtime = self.runtime.clone();
            let core = CoreId(i);
            let spawned = thread::Builder::new()
                .name(format!("coil-pool-{i}"))
                .spawn(move || loop_thread(core, cpu, &runtime, &ready_tx, &start_rx));
            match spawned {
                Ok(t) => {
                    threads.push(t);
                    starts.push(start_tx);
                    handles.push(ready_rx);
                }
                Err(e) => {
                    handles.push(dead_loop(e));
                    break;
                }
            }
        }
        let mut slots = Vec::with_capacity(n);
        let mut error = None;
        for (i, rx) in handles.into_iter().enumerate() {
            match rx.recv() {
                Ok(Ok(handle)) => slots.push(Slot {
                    handle,
                    work: watch::channel(0).0,
                }),
                Ok(Err(e)) => {
                    error.get_or_insert_with(|| {
                        io::Error::new(e.kind(), format!("{}: {e}", CoreId(i)))
                    });
                }
                Err(_) => {
                    error.get_or_insert_with(|| {
                        io::Error::other(format!("{}: the loop thread panicked", CoreId(i)))
                    });
                }
            }
        }
        if let Some(e) = error {
            // Dropping `starts` tells the started loops to exit.
            drop(starts);
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
        let shared = Arc::new(PoolShared {
            slots,
            phase: watch::channel(None).0,
            drain_timeout: self.drain_timeout,
        });
        for tx in starts {
            // Each thread waits for this message.
            let _ = tx.send(shared.clone());
        }
        Ok(Pool {
            handle: PoolHandle { shared },
            threads,
        })
    }
}

/// A receiver that reports a thread that could not be spawned.
fn dead_loop(e: io::Error) -> mpsc::Receiver<io::Result<Handle>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let _ = tx.send(Err(e));
    rx
}

/// The body of loop thread `core`: pin, build the runtime, report its handle,
/// wait for the pool's state, run the loop until it is told to stop, drop the
/// runtime (cancelling its tasks, closing its driver).
fn loop_thread(
    core: CoreId,
    cpu: Option<usize>,
    builder: &rt::Builder,
    ready: &mpsc::SyncSender<io::Result<Handle>>,
    start: &mpsc::Receiver<Arc<PoolShared>>,
) {
    let built = match cpu {
        Some(cpu) => pin_to(cpu).and_then(|()| builder.build()),
        None => builder.build(),
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(rt.handle()));
    let Ok(shared) = start.recv() else {
        // Another loop failed to start: the pool is not built.
        return;
    };
    CURRENT.with(|c| *c.borrow_mut() = Some((shared.clone(), core)));
    rt.block_on(super::stop::home(shared, core));
    drop(rt);
    CURRENT.with(|c| c.borrow_mut().take());
}

/// The CPUs this thread may run on, in order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    if cpus.is_empty() {
        return Err(io::Error::other("sched_getaffinity returned no CPU"));
    }
    Ok(cpus)
}

/// Pins the calling thread to one CPU.
fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from `allowed_cpus`, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is this thread.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::other(format!(
            "sched_setaffinity to CPU {cpu}: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}
