#![no_main]
//! See `mpcium_fuzz::node_control` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::node_control::run(data));
