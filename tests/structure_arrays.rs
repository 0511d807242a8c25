//! Structures from arrays: arrays read straight off a PDB file's ATOM records (by a parser
//! written here, independent of the library's readers) give the same `Protein` as reading the
//! file, the same features and the same scores.

mod common;

use mpnn::checkpoint;
use mpnn::featurize::{featurize, ChainSelection, Constraints};
use mpnn::pipeline::Engine;
use mpnn::structure::{read_structure, Protein, ProteinArrays};

/// Backbone arrays of a PDB file: `[L, 4, 3]` coordinates (NaN for missing atoms), per-residue
/// chain ids, residue numbers (an insertion code repeats its number) and the sequence (X for
/// non-standard residues). HETATM MSE counts as MET; the first altloc of an atom wins.
struct Arrays {
    coords: Vec<f64>,
    ca: Vec<f64>,
    chains: Vec<String>,
    numbers: Vec<i64>,
    sequence: String,
}

fn arrays_of_pdb(text: &str) -> Arrays {
    // (chain, number, icode) in order of first appearance.
    let mut keys: Vec<(String, i64, String)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut atoms: Vec<[Option<[f64; 3]>; 4]> = Vec::new();
    for line in text.lines() {
        let mse = line.starts_with("HETATM") && line.get(17..20) == Some("MSE");
        if !line.starts_with("ATOM") && !mse {
            continue;
        }
        let chain = line[21..22].to_string();
        let resseq = line[22..26].trim().parse::<i64>().unwrap();
        let icode = line[26..27].trim().to_string();
        let key = (chain, resseq, icode);
        let slot = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                names.push(if mse { "MET".into() } else { line[17..20].to_string() });
                atoms.push([None; 4]);
                keys.len() - 1
            }
        };
        let atom = line[12..16].trim();
        let Some(k) = ["N", "CA", "C", "O"].iter().position(|a| *a == atom) else { continue };
        if atoms[slot][k].is_none() {
            let f = |a: usize| line[a..a + 8].trim().parse::<f64>().unwrap();
            atoms[slot][k] = Some([f(30), f(38), f(46)]);
        }
    }
    let mut a = Arrays { coords: vec![], ca: vec![], chains: vec![], numbers: vec![], sequence: String::new() };
    for (i, (chain, number, _)) in keys.iter().enumerate() {
        for (k, atom) in atoms[i].iter().enumerate() {
            let xyz = atom.unwrap_or([f64::NAN; 3]);
            a.coords.extend(xyz);
            if k == 1 {
                a.ca.extend(xyz);
            }
        }
        a.chains.push(chain.clone());
        a.numbers.push(*number);
        let letter = mpnn::alphabet::one_letter_of_three(&names[i]).unwrap_or('X');
        a.sequence.push(letter);
    }
    a
}

/// Bitwise equality (NaN equals NaN).
fn same_protein(a: &Protein, b: &Protein) {
    assert_eq!(a.chain_ids(), b.chain_ids());
    for (x, y) in a.chains.iter().zip(&b.chains) {
        assert_eq!(x.sequence, y.sequence, "chain {}", x.id);
        let bits = |c: &[[[f64; 3]; 4]]| c.iter().flatten().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x.coords), bits(&y.coords), "chain {} coordinates", x.id);
    }
}

#[test]
fn arrays_from_pdb_files_match_the_files() {
    let Some(dir) = common::parity_dir() else { return };
    let engine = {
        let ckpt = checkpoint::load(&dir.join("weights/full_k48.pt")).unwrap();
        Engine::new(&ckpt, ckpt.architecture().unwrap()).unwrap()
    };
    let ca_engine = {
        let ckpt = checkpoint::load(&dir.join("weights/ca_k48.pt")).unwrap();
        Engine::new(&ckpt, ckpt.architecture().unwrap()).unwrap()
    };
    for (file, allow_missing) in [("5L33.pdb", false), ("3HTN.pdb", false), ("quirks.pdb", true)] {
        let path = dir.join("structures").join(file);
        let from_file = read_structure(&path).unwrap();
        let a = arrays_of_pdb(&std::fs::read_to_string(&path).unwrap());
        let l = a.chains.len();
        let stem = from_file.name.clone();
        let from_arrays = ProteinArrays::new(&stem, &a.coords, &[l, 4, 3], &a.chains)
            .residue_numbers(Some(&a.numbers))
            .sequence(Some(&a.sequence))
            .allow_missing(allow_missing)
            .build()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(from_arrays.name, from_file.name);
        same_protein(&from_arrays, &from_file);

        // Features and scores.
        let sel = ChainSelection::all(&from_file);
        let cons = Constraints::default();
        let f_file = featurize(&from_file, &sel, &cons, false).unwrap();
        let f_arrays = featurize(&from_arrays, &sel, &cons, false).unwrap();
        assert_eq!(f_file, f_arrays, "{file}: features");
        let randn: Vec<f32> = (0..f_file.len()).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let passes = vec![(f_file.s.clone(), randn)];
        let s_file = engine.score(&f_file, &passes);
        let s_arrays = engine.score(&f_arrays, &passes);
        assert_eq!(s_file[0].0.score.to_bits(), s_arrays[0].0.score.to_bits(), "{file}: score");
        assert_eq!(s_file[0].0.global_score.to_bits(), s_arrays[0].0.global_score.to_bits());
        assert_eq!(s_file[0].1, s_arrays[0].1, "{file}: log_probs");

        // CA-only arrays [L, 3] featurize for a CA-only model like the file does.
        let from_ca = ProteinArrays::new(&stem, &a.ca, &[l, 3], &a.chains)
            .residue_numbers(Some(&a.numbers))
            .sequence(Some(&a.sequence))
            .allow_missing(allow_missing)
            .build()
            .unwrap();
        let c_file = featurize(&from_file, &sel, &cons, true).unwrap();
        let c_arrays = featurize(&from_ca, &sel, &cons, true).unwrap();
        assert_eq!(c_file, c_arrays, "{file}: CA-only features");
        assert_eq!(ca_engine.unconditional(&c_file), ca_engine.unconditional(&c_arrays), "{file}: CA-only probs");
    }
}

#[test]
fn nan_in_arrays_from_a_file_is_refused_without_allow_missing() {
    let Some(dir) = common::parity_dir() else { return };
    let a = arrays_of_pdb(&std::fs::read_to_string(dir.join("structures/quirks.pdb")).unwrap());
    let l = a.chains.len();
    let e = ProteinArrays::new("quirks", &a.coords, &[l, 4, 3], &a.chains)
        .residue_numbers(Some(&a.numbers))
        .build()
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("quirks: coordinates: "), "{msg}");
    assert!(msg.contains("O coordinate is NaN") && msg.contains("allow_missing"), "{msg}");
}
