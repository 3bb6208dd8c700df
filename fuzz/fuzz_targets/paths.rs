//! `paths`: see `looplight::fuzzing::paths` for the input layout and the properties.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| looplight::fuzzing::paths::run(data));
