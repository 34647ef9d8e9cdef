//! Task state-word transitions against a reference machine (`coil::fuzz::task_state`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil::fuzz::task_state(data));
