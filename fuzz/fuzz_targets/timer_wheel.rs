//! Timer wheel op sequences against a `BTreeMap` model (`coil_fuzz::timer_wheel`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::timer_wheel(data));
