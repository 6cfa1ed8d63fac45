#![no_main]
//! See `mpcium_fuzz::key_share` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::key_share::run(data));
