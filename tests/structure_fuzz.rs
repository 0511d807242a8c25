//! The structure readers never panic: random bytes and mutated real files give `Ok` or `Err`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mpnn::structure::{parse_bytes, parse_jsonl_bytes, parse_mmcif_bytes, parse_pdb_bytes};
use proptest::prelude::*;

fn structures() -> PathBuf {
    std::env::var_os("MPNN_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/parity"))
        .join("structures")
}

/// Seed files: real fixtures where present, plus small built-in samples.
fn seeds() -> &'static Vec<(String, Vec<u8>)> {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v = vec![
            (
                "s.pdb".to_string(),
                b"ATOM      1  N   GLY A   1      11.104   6.134  -6.504  1.00  0.00           N\n\
                  ATOM      2  CA  GLY A   1      11.639   6.071  -5.147  1.00  0.00           C\n\
                  HETATM    3  CA  MSE A   2A     12.000   6.000  -5.000  1.00  0.00           C\n"
                    .to_vec(),
            ),
            (
                "s.cif".to_string(),
                b"data_s\nloop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n\
                  _atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.pdbx_PDB_ins_code\n\
                  _atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n\
                  ATOM N GLY A 1 ? 1 2 3\nATOM \"CA\" 'GLY' A 1 ? 1 2 3\n;x\n;\n"
                    .to_vec(),
            ),
            (
                "s.jsonl".to_string(),
                br#"{"seq_chain_A": "G", "coords_chain_A": {"CA_chain_A": [[1.0, NaN, 3]]}, "name": "s", "num_of_chains": 1, "seq": "G"}"#
                    .to_vec(),
            ),
        ];
        for f in ["5L33.pdb", "5L33.cif", "quirks.pdb", "6MRR.cif"] {
            if let Ok(b) = std::fs::read(structures().join(f)) {
                v.push((f.to_string(), b));
            }
        }
        let jl = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/official-outputs/example_1_outputs/parsed_pdbs.jsonl");
        if let Ok(b) = std::fs::read(jl) {
            v.push(("parsed_pdbs.jsonl".to_string(), b));
        }
        v
    })
}

fn fuzz_cases() -> u32 {
    std::env::var("STRUCTURE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96)
}

/// Feeds bytes to every reader; only a panic fails the test.
fn all_readers(bytes: &[u8]) {
    let _ = parse_pdb_bytes("f.pdb", bytes);
    let _ = parse_mmcif_bytes("f.cif", bytes);
    let _ = parse_jsonl_bytes("f.jsonl", bytes);
    let _ = parse_bytes("f", bytes);
    if let Ok(ps) = parse_bytes("f", bytes) {
        for p in ps {
            let _ = p.validate(false);
            let _ = p.validate(true);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    DeleteLine(usize),
    DuplicateLine(usize),
    Insert(usize, Vec<u8>),
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let n = bytes.len().max(1);
    match m {
        Mutation::Truncate(at) => bytes[..at % n.min(bytes.len() + 1)].to_vec(),
        Mutation::Flip(at, x) => {
            let mut b = bytes.to_vec();
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= x | 1;
            }
            b
        }
        Mutation::DeleteLine(k) | Mutation::DuplicateLine(k) => {
            let mut lines: Vec<&[u8]> = bytes.split(|&c| c == b'\n').collect();
            let i = k % lines.len();
            if matches!(m, Mutation::DeleteLine(_)) {
                lines.remove(i);
            } else {
                lines.insert(i, lines[i]);
            }
            lines.join(&b'\n')
        }
        Mutation::Insert(at, junk) => {
            let mut b = bytes.to_vec();
            let i = at % (b.len() + 1);
            b.splice(i..i, junk.iter().copied());
            b
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'\n'),
                    Just(b'\''),
                    Just(b'"'),
                    Just(b';'),
                    Just(b' '),
                    Just(b'#'),
                    Just(b'{'),
                    Just(b'N'),
                    Just(0xff),
                    any::<u8>()
                ],
                0..12
            )
        )
            .prop_map(|(a, v)| Mutation::Insert(a, v)),
    ]
}

proptest! {
    // STRUCTURE_FUZZ_CASES raises the case count for a longer local run.
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        all_readers(&bytes);
    }

    #[test]
    fn random_text_lines_never_panic(lines in prop::collection::vec("(ATOM  |HETATM|data_|loop_|_atom_site\\.|\\{)[ -~]{0,80}", 0..8)) {
        all_readers(lines.join("\n").as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let (name, bytes) = &seeds[seed.index(seeds.len())];
        let mut b = bytes.clone();
        for m in &muts {
            b = apply(&b, m);
        }
        all_readers(&b);
        let _ = parse_bytes(name, &b);
    }
}
