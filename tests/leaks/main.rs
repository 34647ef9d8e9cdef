//! Leak counts that are process-wide: open fds (`/proc/self/fd`) after
//! `coil::fs` and `coil::net` operations are cancelled, dropped or left in
//! flight, and threads (`/proc/self/task`) and fds after a `coil::pool::Pool`
//! is dropped.
//!
//! One `#[test]` runs the three checks one after another: libtest runs the
//! tests of a binary on several threads, and any other test running beside a
//! check would open fds or start threads of its own and blur its count.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod fs_fd_leaks;
mod net_fd_leaks;
mod pool_leaks;

#[test]
fn no_fd_or_thread_leaks() {
    fs_fd_leaks::no_fd_leaks();
    net_fd_leaks::no_fd_leaks();
    pool_leaks::dropping_a_pool_leaks_no_thread_or_fd();
}
