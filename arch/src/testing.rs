//! Test support, not part of coil's API: helpers that coil's own tests (in this crate and
//! in the `coil` crate) use to make io_uring unavailable, so that the epoll fallback can be
//! tested on a machine that would never choose it, and to inject `io_uring_enter` errors.
//!
//! Exists only with the `testing` feature (and in this crate's unit tests); a normal build
//! has neither this module nor the enter-fault seam it drives. Nothing here is covered by
//! semver, and nothing here belongs in a program.
#![doc(hidden)]

use std::io;

use crate::sys::syscall;

/// `seccomp_data.arch` for the target we are built for.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E); // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7); // AUDIT_ARCH_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

/// Offsets into `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// `io_uring_setup`, `io_uring_enter` and `io_uring_register`: the same numbers on every
/// architecture Linux added them to after the syscall table unification.
pub const IO_URING_SETUP: i64 = 425;
/// See [`IO_URING_SETUP`].
pub const IO_URING_ENTER: i64 = 426;
/// See [`IO_URING_SETUP`].
pub const IO_URING_REGISTER: i64 = 427;

/// Installs a seccomp filter on the **current thread** that makes each system call in
/// `syscalls` fail with `errno` (e.g. `libc::ENOSYS` to look like an old kernel,
/// `libc::EPERM` to look like `kernel.io_uring_disabled=2` or a container profile).
///
/// The filter **cannot be removed**: it stays on this thread, and on every thread it
/// spawns afterwards, until they exit. Only call it on a thread you own, typically a
/// `std::thread` spawned by the test for this purpose, never on a libtest worker thread
/// (the next test would run under the filter) or the main thread. Other threads of the
/// process are unaffected.
///
/// Also sets `PR_SET_NO_NEW_PRIVS` on the thread, which unprivileged seccomp requires.
///
/// # Errors
///
/// `InvalidInput` for an errno outside `1..=4095` or a syscall number that does not fit
/// in 32 bits, or too many numbers; `Unsupported` on an architecture without a known
/// audit arch value; otherwise the `prctl` error.
pub fn deny_io_uring(errno: i32, syscalls: &[i64]) -> io::Result<()> {
    let errno = u32::try_from(errno)
        .ok()
        .filter(|e| (1..=4095).contains(e))
        .ok_or_else(|| invalid("the errno must be between 1 and 4095"))?;
    let Some(audit_arch) = AUDIT_ARCH else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "deny_io_uring knows the seccomp audit arch of x86_64 and aarch64 only.",
        ));
    };
    // Jump offsets are u8, and each JEQ jumps over the ones after it.
    if syscalls.is_empty() || syscalls.len() > 200 {
        return Err(invalid("give between 1 and 200 system call numbers"));
    }

    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let allow = stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    let deny = stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA),
    );

    let mut filter = vec![
        // A foreign-arch syscall (e.g. x32 or i386 on x86_64) has other numbers: allow.
        stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            SECCOMP_DATA_ARCH,
        ),
        jeq(audit_arch, 1, 0),
        allow,
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, SECCOMP_DATA_NR),
    ];
    let n = syscalls.len();
    for (i, &nr) in syscalls.iter().enumerate() {
        let nr = u32::try_from(nr).map_err(|_| invalid("a system call number is out of range"))?;
        // On a match, jump over the remaining JEQs and the ALLOW to the DENY.
        filter.push(jeq(nr, (n - i) as u8, 0));
    }
    filter.push(allow);
    filter.push(deny);

    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    syscall!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // SAFETY: `prog` points at `filter`, a live, well-formed BPF program of `len`
    // instructions; the kernel copies it during the call.
    syscall!(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const prog,
            0,
            0,
        )
    })?;
    Ok(())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("deny_io_uring: {what}."),
    )
}

/// The seam for injected submit errors (docs/reliability.md, check 31): from now on,
/// `fault` is called before each `io_uring_enter` the driver makes (submit, wait,
/// overflow flush); when it returns `Some(errno)` that enter is skipped and the driver
/// sees `errno` as the kernel's answer, with nothing consumed from the submission
/// queue. Tests inject `EAGAIN`, `EBUSY` and `EINTR` to check that ops stay owned and
/// queued until their completion and none is lost. `clear_enter_errors` removes the
/// seam.
///
/// # Errors
///
/// [`io::ErrorKind::Unsupported`] if `driver` is not io_uring.
pub fn inject_enter_errors(
    driver: &mut crate::Driver,
    fault: impl FnMut() -> Option<i32> + Send + 'static,
) -> io::Result<()> {
    set_enter_fault(driver, Some(Box::new(fault)))
}

/// Removes what [`inject_enter_errors`] installed.
///
/// # Errors
///
/// As [`inject_enter_errors`].
pub fn clear_enter_errors(driver: &mut crate::Driver) -> io::Result<()> {
    set_enter_fault(driver, None)
}

/// An installed enter fault (see [`inject_enter_errors`]).
pub(crate) type EnterFault = Box<dyn FnMut() -> Option<i32> + Send>;

fn set_enter_fault(driver: &mut crate::Driver, fault: Option<EnterFault>) -> io::Result<()> {
    match &mut driver.inner {
        #[cfg(not(miri))]
        crate::driver::Inner::Uring(d) => {
            d.set_enter_fault(fault);
            Ok(())
        }
        _ => {
            drop(fault);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "enter faults exist only for the io_uring driver",
            ))
        }
    }
}
