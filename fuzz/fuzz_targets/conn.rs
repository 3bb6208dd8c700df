//! `conn`: see `looplight::fuzzing::conn` for the input layout and the properties.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| looplight::fuzzing::conn::run(data));
