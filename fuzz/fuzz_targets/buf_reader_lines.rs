//! `BufReader` over arbitrary chunkings against std's `BufRead` (`coil::fuzz::buf_reader_lines`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil::fuzz::buf_reader_lines(data));
