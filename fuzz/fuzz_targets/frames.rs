//! Frames (VLAN tags, double tags, runts) through a switch with access,
//! trunk and guest-tagging ports; forwarding invariants checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::testing::fuzz_frames(data));
