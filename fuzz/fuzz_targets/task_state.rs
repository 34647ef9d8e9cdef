//! Task state-word transitions against a reference machine (`coil_fuzz::task_state`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::task_state(data));
