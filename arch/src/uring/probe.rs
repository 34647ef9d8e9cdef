//! The io_uring probe: everything `Auto` checks before it trusts io_uring.
//!
//! Steps, each with its own [`FallbackReason::stage`]: `io_uring_setup` (with
//! `IORING_SETUP_CLAMP` and `MADV_DONTFORK` on the mappings), the `IORING_FEAT_EXT_ARG`
//! feature `park` needs for its timeouts, `io_uring_register(IORING_REGISTER_PROBE)` and
//! the opcode list, and one NOP through `io_uring_enter`.

use std::io;
use std::time::Duration;

use io_uring::types::SubmitArgs;
use io_uring::{IoUring, Probe, opcode};

use super::timespec;
use crate::{Config, FallbackReason, StartError, token};

/// Opcodes coil needs now or in the next milestones; `Auto` falls back to epoll when the
/// kernel lacks any of them.
const REQUIRED_OPCODES: &[(u8, &str)] = &[
    (opcode::Nop::CODE, "IORING_OP_NOP"),
    (opcode::Read::CODE, "IORING_OP_READ"),
    (opcode::Write::CODE, "IORING_OP_WRITE"),
    (opcode::Readv::CODE, "IORING_OP_READV"),
    (opcode::Writev::CODE, "IORING_OP_WRITEV"),
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    (opcode::Timeout::CODE, "IORING_OP_TIMEOUT"),
    (opcode::Accept::CODE, "IORING_OP_ACCEPT"),
    (opcode::Connect::CODE, "IORING_OP_CONNECT"),
    (opcode::Recv::CODE, "IORING_OP_RECV"),
    (opcode::Send::CODE, "IORING_OP_SEND"),
    (opcode::OpenAt::CODE, "IORING_OP_OPENAT"),
    (opcode::Close::CODE, "IORING_OP_CLOSE"),
    (opcode::Statx::CODE, "IORING_OP_STATX"),
    (opcode::Fsync::CODE, "IORING_OP_FSYNC"),
    (opcode::Shutdown::CODE, "IORING_OP_SHUTDOWN"),
    (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
    (opcode::RecvMsg::CODE, "IORING_OP_RECVMSG"),
];

/// How long the probe NOP may take before `Auto` gives up on io_uring.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Builds the ring and runs every probe step on it.
pub(super) fn setup(config: &Config) -> Result<IoUring, StartError> {
    let unusable = |stage| move |e: io::Error| StartError::Unusable(FallbackReason::os(stage, &e));

    let mut ring = build(config.uring_entries, config.uring_single_issuer)
        .map_err(unusable("io_uring_setup"))?;
    if !ring.params().is_feature_ext_arg() {
        return Err(StartError::Unusable(FallbackReason::missing(
            "feature check",
            "IORING_FEAT_EXT_ARG",
        )));
    }

    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(unusable("io_uring_register(probe)"))?;
    if let Some(&(_, name)) = REQUIRED_OPCODES
        .iter()
        .find(|&&(code, _)| !probe.is_supported(code))
    {
        return Err(StartError::Unusable(FallbackReason::missing(
            "opcode probe",
            name,
        )));
    }

    probe_enter(&mut ring)?;
    Ok(ring)
}

/// `io_uring_setup` with `CLAMP` and `MADV_DONTFORK` on the mappings; with
/// `single_issuer`, also `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG` (Linux 6.1+) unless
/// the kernel rejects those flags with `EINVAL`, in which case the ring is built without.
///
/// `DEFER_TASKRUN` is what makes the ring cheap under load: the kernel work that finishes
/// a request (running a `recv` again once its socket became readable, say) is queued on
/// the ring and run in a batch when the owner enters with `GETEVENTS`, instead of
/// interrupting the thread through task work whenever a packet arrives. The cost is that
/// completions are only posted on such an enter: `park` must enter when
/// `IORING_SQ_TASKRUN` says work is queued (see the module docs).
pub(super) fn build(entries: u32, single_issuer: bool) -> io::Result<IoUring> {
    let plain = || IoUring::builder().setup_clamp().dontfork().build(entries);
    if !single_issuer {
        return plain();
    }
    let deferred = IoUring::builder()
        .setup_clamp()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .dontfork()
        .build(entries);
    match deferred {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => plain(),
        other => other,
    }
}

/// Sends one NOP through `io_uring_enter` (with an EXT_ARG timeout, as `park` uses) and
/// waits for its CQE, so a seccomp filter on `io_uring_enter` is caught while choosing.
fn probe_enter(ring: &mut IoUring) -> Result<(), StartError> {
    let nop = opcode::Nop::new().build().user_data(token::PROBE);
    // SAFETY: a NOP holds no pointers.
    if unsafe { ring.submission().push(&nop) }.is_err() {
        return Err(StartError::Unusable(FallbackReason::other(
            "io_uring_enter",
            "the fresh submission queue has no room for one entry",
        )));
    }
    let ts = timespec(PROBE_TIMEOUT);
    let args = SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
        Err(e) => {
            return Err(StartError::Unusable(FallbackReason::os(
                "io_uring_enter",
                &e,
            )));
        }
    }
    for cqe in ring.completion() {
        if cqe.user_data() == token::PROBE {
            if cqe.result() < 0 {
                let e = io::Error::from_raw_os_error(-cqe.result());
                return Err(StartError::Unusable(FallbackReason::os(
                    "io_uring_enter",
                    &e,
                )));
            }
            return Ok(());
        }
    }
    Err(StartError::Unusable(FallbackReason::other(
        "io_uring_enter",
        "a NOP did not complete within a second",
    )))
}
