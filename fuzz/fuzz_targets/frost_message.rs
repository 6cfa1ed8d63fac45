#![no_main]
//! See `mpcium_fuzz::frost_message` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::frost_message::run(data));
