//! Reads, cancelled reads, writes and peer actions on one stream under the real
//! io_uring and epoll drivers, against a byte-count model. The program runner is
//! shared with the property test `tests/props/prop_stream.rs` (it uses only coil's
//! public API), so the target includes it by path itself.
#![no_main]

#[path = "../../tests/support/stream_program.rs"]
mod stream_program;

libfuzzer_sys::fuzz_target!(|data: &[u8]| stream_program::run_bytes(data));
