//! The YAML loader: any text gives a config or positioned errors, never a
//! panic or a hang.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::parse_str(text, "fuzz.yaml");
    }
});
