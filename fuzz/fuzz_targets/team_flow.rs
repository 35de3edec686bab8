//! The teaming flow-key parser and hash selection over arbitrary frames
//! (what an uplink or a guest can put on the wire).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| teaming::fuzz_frame(data));
