//! The byte stream of a vhost-user frontend, through a port's request loop.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::vhost::fuzzing::messages(data));
