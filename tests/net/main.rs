//! TCP, UDP and Unix sockets: streams, datagrams, vectored I/O, stress; and
//! the areq.py port (`examples/areq`) against a local HTTP server.
//!
//! One test binary for several files (each a module below): a cold `cargo test`
//! links far fewer binaries. Tests that count process-wide things (open fds,
//! heap bytes, RSS, CPU time, pool threads) or install panic hooks stay in
//! binaries of their own (`tests/*.rs`).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod example_echo;
mod example_echo_per_core;
mod net_areq;
mod net_pooled;
mod net_sockopt;
mod net_stress;
mod net_tcp;
mod net_udp;
mod net_unix;
mod net_vectored;
