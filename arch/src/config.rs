//! What the caller of [`Driver::new`](crate::Driver::new) chooses: the backend
//! ([`DriverChoice`], also read from `COIL_DRIVER`) and its settings ([`Config`]); and the
//! [`DriverKind`] a built driver reports.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

#[cfg(doc)]
use crate::{Driver, sim};

/// Which backend a [`Driver`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// Linux io_uring: completions.
    Uring,
    /// Linux epoll: readiness, with completions emulated above it.
    Epoll,
    /// The deterministic simulator ([`sim`]): virtual clock, in-memory network.
    Sim,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::Uring => "io_uring",
            DriverKind::Epoll => "epoll",
            DriverKind::Sim => "sim",
        })
    }
}

/// Which backend to build: a specific one, or the best one that works here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DriverChoice {
    /// io_uring if it is usable, otherwise epoll (see [`Driver::fallback`]).
    #[default]
    Auto,
    /// io_uring or an error.
    Uring,
    /// epoll.
    Epoll,
}

/// The environment variable [`DriverChoice::from_env`] reads.
const DRIVER_ENV: &str = "COIL_DRIVER";

impl DriverChoice {
    /// Reads `COIL_DRIVER`. Unset, empty or blank gives `Ok(None)`; otherwise the value is
    /// parsed as by [`FromStr`] (`auto`, `uring`/`io_uring`/`io-uring`, `epoll`, any case).
    pub fn from_env() -> Result<Option<DriverChoice>, ParseDriverChoiceError> {
        let Some(value) = std::env::var_os(DRIVER_ENV) else {
            return Ok(None);
        };
        let value = value.to_string_lossy();
        if value.trim().is_empty() {
            return Ok(None);
        }
        value.parse().map(Some)
    }
}

impl FromStr for DriverChoice {
    type Err = ParseDriverChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DriverChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(DriverChoice::Uring),
            "epoll" => Ok(DriverChoice::Epoll),
            _ => Err(ParseDriverChoiceError {
                input: s.to_owned(),
            }),
        }
    }
}

/// The error for a driver name that is none of `auto`, `uring`, `epoll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDriverChoiceError {
    input: String,
}

impl fmt::Display for ParseDriverChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid driver {:?}: expected one of auto, uring, epoll",
            self.input
        )
    }
}

impl Error for ParseDriverChoiceError {}

/// Settings for [`Driver::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Submission queue entries for io_uring (the completion queue gets twice as many).
    /// Clamped by the kernel to its maximum (`IORING_SETUP_CLAMP`); must be at least 1.
    /// The rings' memory grows with it (about 3 MiB at the kernel's maximum of 32 768),
    /// and the kernel may refuse a large ring with `ENOMEM` when it cannot find that
    /// memory; [`Driver::new`](crate::Driver::new) returns that error. Default: 256.
    pub uring_entries: u32,
    /// Build the io_uring ring for one thread: `IORING_SETUP_SINGLE_ISSUER |
    /// DEFER_TASKRUN | TASKRUN_FLAG` (Linux 6.1+; on older kernels the ring is built
    /// without them). The kernel then finishes requests in a batch when the driver parks
    /// instead of interrupting the thread as packets arrive, which saves kernel time per
    /// request under load.
    ///
    /// The price: the driver must be parked (and dropped) on the thread that called
    /// [`Driver::new`]; parking it anywhere else panics. Leave it `false` for a driver
    /// that moves between threads. coil's runtime, which never leaves its thread, sets
    /// it. Ignored by epoll. Default: `false`.
    pub uring_single_issuer: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            uring_entries: 256,
            uring_single_issuer: false,
        }
    }
}
