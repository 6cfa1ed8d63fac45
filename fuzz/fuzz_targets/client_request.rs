#![no_main]
//! See `mpcium_fuzz::client_request` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::client_request::run(data));
