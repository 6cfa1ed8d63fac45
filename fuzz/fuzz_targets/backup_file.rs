#![no_main]
//! See `mpcium_fuzz::backup_file` for what this target feeds and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpcium_fuzz::backup_file::run(data));
