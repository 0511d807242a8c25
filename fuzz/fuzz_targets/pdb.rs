//! `cargo +nightly fuzz run pdb`: the PDB reader returns Ok or Err on any bytes, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = mpnn::structure::parse_pdb_bytes("fuzz.pdb", data) {
        let _ = p.validate(false);
        let _ = mpnn::structure::to_jsonl_line(&p, false);
    }
});
