//! Descriptor chains, indirect tables, indexes and buffers a guest
//! controls, through the switch's receive and (mergeable) transmit paths.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::vhost::fuzzing::rings(data));
