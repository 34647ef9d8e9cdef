//! Test support, not part of coil's API: helpers that coil's own tests (in this crate and
//! in `coil`) use to make io_uring unavailable.
#![doc(hidden)]
