//! The simulator as a backend: what [`Driver`](crate::Driver) calls (new, park, submit,
//! cancel, drain, release_fd), and the step that retries pending operations against the
//! network model.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::net::Net;
use super::{Attempt, Pending, SimConfig, SimDriver, SplitMix64, err, is_virtual_fd};
use crate::op::{Completion, OpPtr, SimOp};
use crate::sys::{Blocking, EventFd, syscall};
use crate::unpark::{self, Unparker};

impl SimDriver {
    pub(crate) fn new(config: SimConfig) -> io::Result<SimDriver> {
        let shared = unpark::Shared::new(EventFd::new(Blocking::No)?);
        // Decorrelate the driver's stream from the scheduler's, which the
        // runtime seeds with the same seed.
        let mut rng = SplitMix64::new(config.seed ^ 0x5EED_D21F_E2AC_C0DE);
        let first_port = 32_768 + rng.below(20_000) as u16;
        Ok(SimDriver {
            config,
            now: Duration::ZERO,
            rng,
            seq: 0,
            due: BTreeMap::new(),
            events: BTreeMap::new(),
            pending: BTreeMap::new(),
            by_key: BTreeMap::new(),
            net: Net::new(first_port),
            shared,
        })
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker::new(self.shared.clone())
    }

    /// Operations submitted and not yet completed (decided or not).
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.due.len()
    }

    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<()> {
        self.step();
        self.take_due(out);
        if out.is_empty() && timeout != Some(Duration::ZERO) {
            self.wait_unpark(timeout)?;
        }
        if self.shared.is_notified() {
            self.shared.eventfd().drain()?;
            self.shared.clear();
        }
        Ok(())
    }

    /// Real-time wait for an unpark (the only thing outside the simulation).
    fn wait_unpark(&self, timeout: Option<Duration>) -> io::Result<()> {
        let ms = timeout.map_or(-1, |t| {
            i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        });
        let mut pfd = libc::pollfd {
            fd: self.shared.eventfd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a live local and the count is 1.
        match syscall!(unsafe { libc::poll(&raw mut pfd, 1, ms) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deliver due network events, then try pending ops (in submission
    /// order) until none makes progress.
    pub(super) fn step(&mut self) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let ev = entry.remove();
            self.deliver(ev);
        }
        loop {
            let mut progress = false;
            let keys: Vec<u64> = self.pending.keys().copied().collect();
            for key in keys {
                let Some(p) = self.pending.get(&key) else {
                    continue;
                };
                if p.not_before > self.now {
                    continue;
                }
                let (user_data, op) = (p.user_data, p.op);
                // A spurious readiness: the op is looked at again later.
                if self.config.faults.eagain > 0.0 && self.rng.chance(self.config.faults.eagain) {
                    let at = self.now + self.latency();
                    if let Some(p) = self.pending.get_mut(&key) {
                        p.not_before = at;
                    }
                    continue;
                }
                if let Attempt::Done(res) = self.attempt(op) {
                    self.pending.remove(&key);
                    self.by_key.remove(&user_data);
                    self.complete_later(user_data, res);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn attempt(&mut self, op: OpPtr) -> Attempt {
        // SAFETY: `op` was submitted and has not completed: the submitter keeps
        // it alive, in place and otherwise unused until then (Driver::submit).
        let op = unsafe { &mut *op.0.as_ptr() };
        let Some(sim) = op.sim() else {
            return err(libc::EOPNOTSUPP);
        };
        match sim {
            SimOp::Nop => Attempt::Done(0),
            SimOp::Accept { fd, peer } => self.accept(fd, peer),
            SimOp::Connect { fd, addr } => self.connect(fd, addr),
            SimOp::Recv { fd, buf } => self.recv(fd, buf),
            SimOp::Send { fd, buf } => self.send(fd, buf),
            SimOp::RecvFrom { fd, buf, from } => self.recv_from(fd, buf, from),
            SimOp::SendTo { fd, buf, to } => self.send_to(fd, buf, to),
            SimOp::Shutdown { fd, how } => self.shutdown(fd, how),
        }
    }

    /// # Safety
    ///
    /// As [`Driver::submit`](crate::Driver::submit).
    pub(crate) unsafe fn submit(&mut self, user_data: u64, op: OpPtr) -> io::Result<()> {
        // SAFETY: the caller keeps `op` valid and unused by others until its
        // completion; here we only ask what it is.
        let simulated = unsafe { &mut *op.0.as_ptr() }
            .sim()
            .is_some_and(|s| s.fd().is_none_or(is_virtual_fd));
        if !simulated {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this operation is not supported by the coil simulator \
                 (it simulates TCP and UDP sockets only)",
            ));
        }
        let key = self.next_seq();
        self.pending.insert(
            key,
            Pending {
                user_data,
                op,
                not_before: self.now,
            },
        );
        self.by_key.insert(user_data, key);
        Ok(())
    }

    pub(crate) fn cancel(&mut self, user_data: u64) {
        let Some(key) = self.by_key.remove(&user_data) else {
            // Already decided: its real result stands (it won the race).
            return;
        };
        let p = self.pending.remove(&key).expect("by_key and pending agree");
        let mut result = -libc::ECANCELED;
        if self.rng.chance(self.config.faults.cancel_race)
            && let Attempt::Done(res) = self.attempt(p.op)
        {
            result = res;
        }
        self.complete_later(user_data, result);
    }

    /// Ops whose memory the simulator may still use: submitted and not yet
    /// decided (see `Driver::in_flight`).
    pub(crate) fn undecided(&self) -> usize {
        self.pending.len()
    }

    /// Cancels every undecided op, in submission order (as `cancel` does one:
    /// each gets a completion, due after a latency). See `Driver::drain`.
    pub(crate) fn cancel_all(&mut self) {
        let keys: Vec<u64> = self.pending.values().map(|p| p.user_data).collect();
        for user_data in keys {
            self.cancel(user_data);
        }
    }

    pub(crate) fn release_fd(&mut self, fd: RawFd) {
        // Fuzzing: op/fd.rs rule 1 in coil says an fd is closed only after
        // every op on it completed; check it where the close lands.
        #[cfg(fuzzing)]
        for p in self.pending.values() {
            // SAFETY: as in `attempt`: a pending op is alive and unused.
            let on = unsafe { &mut *p.op.0.as_ptr() }.sim().and_then(|s| s.fd());
            assert_ne!(
                on,
                Some(fd),
                "fd {fd} closed while op {:#x} is pending on it",
                p.user_data
            );
        }
        if is_virtual_fd(fd) {
            self.close_socket(fd, false);
        }
    }
}
