//! The loop's scheduling order against a `VecDeque` model (`coil_fuzz::run_queue`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::run_queue(data));
