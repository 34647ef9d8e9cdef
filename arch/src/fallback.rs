//! Why io_uring was not used ([`FallbackReason`], kept by `Auto` when it falls back to
//! epoll) and how a backend's construction fails (`StartError`: unusable, or an ordinary
//! I/O error).

use std::error::Error;
use std::fmt;
use std::io;

#[cfg(doc)]
use crate::DriverChoice;

/// Why [`DriverChoice::Auto`] did not choose io_uring: the probe step that failed and,
/// when the kernel said so with one, the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackReason {
    stage: &'static str,
    cause: Cause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cause {
    /// The step failed with this errno.
    Os(i32),
    /// The kernel lacks this opcode or feature (named as in the kernel headers).
    Missing(&'static str),
    /// Anything else, as a sentence fragment.
    Other(&'static str),
}

#[cfg_attr(miri, allow(dead_code))]
impl FallbackReason {
    pub(crate) fn os(stage: &'static str, err: &io::Error) -> FallbackReason {
        let cause = match err.raw_os_error() {
            Some(errno) => Cause::Os(errno),
            None => Cause::Other("it failed without an OS error code"),
        };
        FallbackReason { stage, cause }
    }

    pub(crate) fn missing(stage: &'static str, what: &'static str) -> FallbackReason {
        FallbackReason {
            stage,
            cause: Cause::Missing(what),
        }
    }

    pub(crate) fn other(stage: &'static str, what: &'static str) -> FallbackReason {
        FallbackReason {
            stage,
            cause: Cause::Other(what),
        }
    }

    /// The errno the failing step returned (`Some(ENOSYS)` where io_uring does not exist
    /// or seccomp hides it, `Some(EPERM)` where `kernel.io_uring_disabled` forbids it);
    /// `None` when there was no errno, e.g. a missing opcode.
    pub fn errno(&self) -> Option<i32> {
        match self.cause {
            Cause::Os(errno) => Some(errno),
            Cause::Missing(_) | Cause::Other(_) => None,
        }
    }

    /// The probe step that failed: `"io_uring_setup"`, `"feature check"`,
    /// `"io_uring_register(probe)"`, `"opcode probe"` or `"io_uring_enter"`.
    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The error a forced [`DriverChoice::Uring`] returns for this reason. With an errno
    /// this is exactly the OS error (so `raw_os_error` works); otherwise an
    /// `Unsupported` error whose message names the reason.
    pub(crate) fn into_io_error(self) -> io::Error {
        match self.cause {
            Cause::Os(errno) => io::Error::from_raw_os_error(errno),
            Cause::Missing(_) | Cause::Other(_) => io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring could not start: {self}."),
            ),
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Cause::Os(errno) => write!(
                f,
                "{} failed: {}",
                self.stage,
                io::Error::from_raw_os_error(errno)
            ),
            Cause::Missing(what) => write!(f, "{}: the kernel lacks {what}", self.stage),
            Cause::Other(what) => write!(f, "{}: {what}", self.stage),
        }
    }
}

impl Error for FallbackReason {}

/// Why a backend's `new` failed: io_uring is unusable here (fall back), or an ordinary
/// I/O error such as `EMFILE` (do not fall back; epoll would fail the same way).
#[cfg_attr(miri, allow(dead_code))]
#[derive(Debug)]
pub(crate) enum StartError {
    Unusable(FallbackReason),
    Io(io::Error),
}
