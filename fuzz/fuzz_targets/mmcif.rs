//! `cargo +nightly fuzz run mmcif`: the mmCIF reader returns Ok or Err on any bytes, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = mpnn::structure::parse_mmcif_bytes("fuzz.cif", data) {
        let _ = p.validate(false);
    }
});
