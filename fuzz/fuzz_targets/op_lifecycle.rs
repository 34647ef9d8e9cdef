//! Op table and fd/buffer ownership under the simulator, kernel driven by hand (`coil_fuzz::op_lifecycle`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::op_lifecycle(data));
