//! `cargo +nightly fuzz run jsonl`: the jsonl reader (and format sniffing with gzip) never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mpnn::structure::parse_jsonl_bytes("fuzz.jsonl", data);
    let _ = mpnn::structure::parse_bytes("fuzz", data);
});
