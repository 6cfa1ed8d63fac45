#![no_main]
//! See `mpcium_fuzz::registry_record` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::registry_record::run(data));
