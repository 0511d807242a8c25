//! LigandMPNN parsing and featurization against the official arrays
//! (`../shared/parity/ligand/CASE.npz`, see its README): every case is parsed with its flags,
//! its selections built and featurized, and every parse and feature array compared. Also: the
//! same atoms through PDB, mmCIF and gzip give the same features, and bad selection inputs give
//! clear errors.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use mpnn::ligand::featurize::{featurize, virtual_cb, ContextOptions, FeatureNote, Featurized};
use mpnn::ligand::parse::{
    parse_ligand_structure, read_ligand_structure, ContextStatus, DroppedKind, LigandStructure, ParseOptions,
};
use mpnn::ligand::select;
use mpnn::npz::{ArrayData, Npz};
use serde_json::Value;

/// `../shared/parity/ligand` (or `$MPNN_PARITY_DIR/ligand`); a failure under CI when missing.
fn ligand_dir() -> Option<PathBuf> {
    let dir = common::parity_dir()?.join("ligand");
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("ligand fixtures not found at {} (required under CI)", dir.display());
    }
    eprintln!("skipped: ligand fixtures not found at {}", dir.display());
    None
}

fn flag_str(flags: &Value, key: &str) -> String {
    match &flags[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn flag_num(flags: &Value, key: &str) -> Option<f64> {
    match &flags[key] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings(npz: &Npz, name: &str) -> Vec<String> {
    match &npz.get(name).unwrap().data {
        ArrayData::Str(v) => v.clone(),
        other => panic!("{name}: not strings: {other:?}"),
    }
}

fn assert_close(case: &str, name: &str, ours: &[f32], official: &[f32], tol: f32) {
    assert_eq!(ours.len(), official.len(), "{case}: {name}: length");
    for (i, (a, b)) in ours.iter().zip(official).enumerate() {
        assert!((a - b).abs() <= tol, "{case}: {name}[{i}]: ours {a}, official {b}");
    }
}

fn flat3<const N: usize>(v: &[[[f32; 3]; N]]) -> Vec<f32> {
    v.iter().flat_map(|r| r.iter().flatten().copied()).collect()
}

/// One case's inputs, as `run.py` would build them from the case's flags.
struct Built {
    structure: LigandStructure,
    featurized: Featurized,
    symmetry: select::Symmetry,
}

fn build_case(dir: &Path, json: &Value) -> Built {
    let flags = &json["flags"];
    let model_type = json["model_type"].as_str().unwrap();
    let chains = flag_str(flags, "parse_these_chains_only");
    let options = ParseOptions {
        chains: if chains.is_empty() { Vec::new() } else { chains.split(',').map(String::from).collect() },
        parse_atoms_with_zero_occupancy: flag_num(flags, "parse_atoms_with_zero_occupancy").unwrap_or(0.0) != 0.0,
    };
    let structure = read_ligand_structure(&dir.join(json["pdb"].as_str().unwrap()), &options).unwrap();
    let dict = |key: &str| json.get(key).filter(|v| v.is_object()).map(|v| (key.to_string(), v.clone()));
    let run_flags = select::RunFlags {
        chains_to_design: flag_str(flags, "chains_to_design"),
        fixed_residues: flag_str(flags, "fixed_residues"),
        redesigned_residues: flag_str(flags, "redesigned_residues"),
        bias_aa: flag_str(flags, "bias_AA"),
        omit_aa: flag_str(flags, "omit_AA"),
        bias_aa_per_residue: dict("bias_AA_per_residue"),
        omit_aa_per_residue: dict("omit_AA_per_residue"),
        symmetry_residues: flag_str(flags, "symmetry_residues"),
        symmetry_weights: flag_str(flags, "symmetry_weights"),
        homo_oligomer: flag_num(flags, "homo_oligomer").unwrap_or(0.0) != 0.0,
        transmembrane_buried: flag_str(flags, "transmembrane_buried"),
        transmembrane_interface: flag_str(flags, "transmembrane_interface"),
        global_transmembrane_label: flag_num(flags, "global_transmembrane_label").unwrap_or(0.0) as i32,
    };
    let membrane = match model_type {
        "per_residue_label_membrane_mpnn" => select::MembraneLabels::PerResidue,
        "global_label_membrane_mpnn" => select::MembraneLabels::Global,
        _ => select::MembraneLabels::None,
    };
    let sel = select::selections(&structure, &run_flags, membrane).unwrap();
    let checkpoint = json["checkpoint"].as_str().unwrap();
    let m = if model_type == "ligand_mpnn" {
        let tail = checkpoint.rsplit("_a").next().unwrap().trim_end_matches(".pt");
        tail.parse::<usize>().unwrap_or_else(|_| panic!("atom_context_num of {checkpoint}"))
    } else {
        0
    };
    let options = ContextOptions {
        atom_context_num: m,
        cutoff_for_score: flag_num(flags, "ligand_mpnn_cutoff_for_score").unwrap_or(8.0) as f32,
        use_atom_context: flag_num(flags, "ligand_mpnn_use_atom_context").unwrap_or(1.0) != 0.0,
        side_chain_context: flag_num(flags, "ligand_mpnn_use_side_chain_context").unwrap_or(0.0) != 0.0,
    };
    let featurized = featurize(&structure, &options, &sel.chain_mask, &sel.bias, sel.membrane_labels).unwrap();
    Built { structure, featurized, symmetry: sel.symmetry }
}

/// Compares `Y`/`Y_t`/`Y_m` row by row; where the atom chosen differs, both choices must be at
/// the same distance (a tie) from the residue's virtual CB.
fn compare_context(case: &str, b: &Built, npz: &Npz) {
    let f = &b.featurized.features;
    let m = f.atom_context_num;
    let (oy, ot, om) = (npz.f32("Y").unwrap(), npz.i64("Y_t").unwrap(), npz.f32("Y_m").unwrap());
    assert_eq!(oy.len(), f.len() * m * 3, "{case}: Y shape");
    let mut ties = 0;
    for i in 0..f.len() {
        let cb = virtual_cb(&f.x[i]);
        let d2 = |p: [f32; 3]| {
            let d = [cb[0] - p[0], cb[1] - p[1], cb[2] - p[2]];
            (d[0] * d[0] + d[1] * d[1]) + d[2] * d[2]
        };
        for k in 0..m {
            let s = i * m + k;
            let theirs = [oy[3 * s], oy[3 * s + 1], oy[3 * s + 2]];
            assert_eq!(f.y_m[s], om[s], "{case}: Y_m[{i},{k}]");
            if f.y[s] == theirs && f.y_t[s] as i64 == ot[s] {
                continue;
            }
            let masked = f.mask[i] == 0.0;
            assert!(
                masked || d2(f.y[s]) == d2(theirs),
                "{case}: residue {} slot {k}: ours {:?} (type {}, d² {}), official {theirs:?} (type {}, d² {})",
                b.structure.ids[i],
                f.y[s],
                f.y_t[s],
                d2(f.y[s]),
                ot[s],
                d2(theirs)
            );
            ties += 1;
        }
    }
    if ties > 0 {
        eprintln!("{case}: {ties} context slots differ only between atoms at equal distance");
    }
}

#[test]
fn every_case_matches_the_official_arrays() {
    let Some(dir) = ligand_dir() else { return };
    let cases = common::cases(&dir);
    assert!(cases.len() >= 17, "expected the 17 ligand cases, found {cases:?}");
    for name in &cases {
        let case = common::load_case(&dir, name);
        let (json, npz) = (&case.json, &case.npz);
        let b = build_case(&dir, json);
        let s = &b.structure;
        let f = &b.featurized.features;
        // parse_PDB's outputs.
        assert_eq!(s.residue_names(), strings(npz, "parse_residue_ids"), "{name}: residue ids");
        assert_eq!(s.chain_letters(), strings(npz, "parse_chain_letters"), "{name}: chain letters");
        let icodes: Vec<String> = s.ids.iter().map(|id| id.icode.clone()).collect();
        assert_eq!(icodes, strings(npz, "parse_CA_icodes"), "{name}: icodes");
        let (y, yt, ym) = if s.context_status() == ContextStatus::AllRemoved {
            (Vec::new(), Vec::new(), Vec::new())
        } else {
            s.context_arrays()
        };
        assert_eq!(y.iter().flatten().copied().collect::<Vec<f32>>(), npz.f32("parse_Y").unwrap(), "{name}: parse_Y");
        assert_eq!(
            yt.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            npz.i64("parse_Y_t").unwrap(),
            "{name}: parse_Y_t"
        );
        assert_eq!(
            ym.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            npz.i64("parse_Y_m").unwrap(),
            "{name}: parse_Y_m"
        );
        assert_eq!(
            s.context_xyz.len(),
            json["parse"]["ligand_atoms_kept"].as_u64().unwrap() as usize,
            "{name}: ligand atoms kept"
        );
        assert_eq!(s.other_atoms.len(), json["parse"]["other_atoms"].as_u64().unwrap() as usize, "{name}: other atoms");
        assert_eq!(s.water_atoms, json["parse"]["water_atoms"].as_u64().unwrap() as usize, "{name}: water atoms");
        let pre = if npz.has("parse_X") { "parse_" } else { "" };
        if pre.is_empty() {
            // featurize() and run.py's completion.
            assert_close(name, "X", &flat3(&f.x), &npz.f32("X").unwrap(), 1e-4);
            assert_eq!(f.s.iter().map(|&v| v as i64).collect::<Vec<_>>(), npz.i64("S").unwrap(), "{name}: S");
            assert_eq!(f.mask, npz.f32("mask").unwrap(), "{name}: mask");
            assert_eq!(
                f.r_idx.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                npz.i64("R_idx").unwrap(),
                "{name}: R_idx"
            );
            assert_eq!(
                f.r_idx_original.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                npz.i64("R_idx_original").unwrap(),
                "{name}: R_idx_original"
            );
            assert_eq!(
                f.chain_labels.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                npz.i64("chain_labels").unwrap(),
                "{name}: chain_labels"
            );
            assert_eq!(f.chain_mask, npz.f32("chain_mask").unwrap(), "{name}: chain_mask");
            assert_close(name, "xyz_37", &flat3(&f.xyz_37), &npz.f32("xyz_37").unwrap(), 1e-4);
            let xm: Vec<f32> = f.xyz_37_m.iter().flatten().copied().collect();
            assert_eq!(xm, npz.f32("xyz_37_m").unwrap(), "{name}: xyz_37_m");
            let bias: Vec<f32> = f.bias.iter().flatten().copied().collect();
            assert_eq!(bias, npz.f32("bias").unwrap(), "{name}: bias");
            if npz.has("membrane_per_residue_labels") {
                let labels: Vec<i64> = f.membrane_labels.as_ref().unwrap().iter().map(|&v| v as i64).collect();
                assert_eq!(labels, npz.i64("membrane_per_residue_labels").unwrap(), "{name}: membrane labels");
            } else {
                assert!(f.membrane_labels.is_none(), "{name}: membrane labels without a membrane model");
            }
            if json["model_type"] == "ligand_mpnn" {
                compare_context(name, &b, npz);
                assert_eq!(f.mask_xy, npz.f32("mask_XY").unwrap(), "{name}: mask_XY");
                let within = f.mask_xy.iter().filter(|&&v| v == 1.0).count();
                assert_eq!(within as u64, json["residues_within_cutoff"].as_u64().unwrap(), "{name}: within cutoff");
            } else {
                assert!(f.y.is_empty() && f.atom_context_num == 0, "{name}: no atom context");
            }
        } else {
            // The official code failed in featurize: compare parse_PDB's own arrays.
            assert_close(name, "parse_X", &flat3(&f.x), &npz.f32("parse_X").unwrap(), 1e-4);
            assert_eq!(f.s.iter().map(|&v| v as i64).collect::<Vec<_>>(), npz.i64("parse_S").unwrap(), "{name}: S");
            assert_eq!(f.mask, npz.f32("parse_mask").unwrap(), "{name}: mask");
            assert_eq!(
                f.r_idx_original.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                npz.i64("parse_R_idx").unwrap(),
                "{name}: parse_R_idx"
            );
            assert_eq!(
                f.chain_labels.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                npz.i64("parse_chain_labels").unwrap(),
                "{name}: chain_labels"
            );
            assert_close(name, "parse_xyz_37", &flat3(&f.xyz_37), &npz.f32("parse_xyz_37").unwrap(), 1e-4);
            let xm: Vec<f32> = f.xyz_37_m.iter().flatten().copied().collect();
            assert_eq!(xm, npz.f32("parse_xyz_37_m").unwrap(), "{name}: xyz_37_m");
        }
        // Symmetry as run.py remapped it.
        if json["symmetry_residues"].is_null() {
            // The official run stopped before remapping them (ligand_hydrogen_only).
            assert!(json["error"].is_string(), "{name}: symmetry recorded");
            eprintln!("{name}: ok (L = {}, official error: {})", s.len(), json["error"]);
            continue;
        }
        let groups: Vec<Vec<usize>> = serde_json::from_value(json["symmetry_residues"].clone()).unwrap();
        let weights: Vec<Vec<f64>> = serde_json::from_value(json["symmetry_weights"].clone()).unwrap();
        let ours_w: Vec<Vec<f64>> = b.symmetry.weights.iter().map(|g| g.iter().map(|&w| w as f64).collect()).collect();
        if groups == vec![Vec::<usize>::new()] {
            assert!(b.symmetry.is_empty(), "{name}: no symmetry");
        } else if json["flags"]["homo_oligomer"].as_f64().unwrap_or(0.0) != 0.0 {
            // Official member order follows Python's string hashing: compare as sets.
            let set = |g: &[Vec<usize>]| {
                g.iter().map(|m| m.iter().copied().collect::<BTreeSet<_>>()).collect::<BTreeSet<_>>()
            };
            assert_eq!(set(&b.symmetry.groups), set(&groups), "{name}: homo-oligomer groups");
            assert_eq!(b.symmetry.groups.len(), groups.len(), "{name}: homo-oligomer group count");
            for w in &ours_w {
                assert!(w.iter().all(|&x| (x - 0.5).abs() < 1e-7), "{name}: weights {w:?}");
            }
            // With the recorded chain order the groups are the recorded ones.
            let s0 = &b.structure;
            let first = s0.ids[groups[0][0]].chain.clone();
            let order: Vec<String> = groups[0].iter().map(|&i| s0.ids[i].chain.clone()).collect();
            assert_eq!(order[0], first);
            let again = select::homo_oligomer(s0, Some(&order)).unwrap();
            assert_eq!(again.groups, groups, "{name}: groups in the recorded chain order");
        } else {
            assert_eq!(b.symmetry.groups, groups, "{name}: symmetry groups");
            for (a, o) in ours_w.iter().flatten().zip(weights.iter().flatten()) {
                assert!((a - o).abs() < 1e-6, "{name}: symmetry weights {ours_w:?} vs {weights:?}");
            }
        }
        let incomplete = f.mask.iter().filter(|&&m| m == 0.0).count();
        eprintln!(
            "{name}: ok (L = {}, {} context atoms, {incomplete} residues without a full backbone)",
            s.len(),
            s.context_xyz.len()
        );
    }
}

#[test]
fn hydrogen_only_runs_without_context_and_says_so() {
    let Some(dir) = ligand_dir() else { return };
    let s = read_ligand_structure(&dir.join("structures/ligand_hydrogen_only.pdb"), &ParseOptions::default()).unwrap();
    assert_eq!(s.context_status(), ContextStatus::AllRemoved);
    assert!(s.notes.iter().any(|n| n.kind == DroppedKind::Hydrogen));
    let l = s.len();
    let f = featurize(&s, &ContextOptions::ligand(25), &vec![1.0; l], &vec![[0.0; 21]; l], None).unwrap();
    assert!(matches!(f.notes.as_slice(), [FeatureNote::AllContextAtomsRemoved { .. }]), "{:?}", f.notes);
    assert!(f.notes[0].to_string().contains("ligand_hydrogen_only.pdb"));
    assert!(f.features.y_m.iter().all(|&v| v == 0.0));
    assert!(f.features.mask_xy.iter().all(|&v| v == 0.0));
    assert_eq!(f.features.y.len(), l * 25);
}

#[test]
fn quirks_notes_name_the_dropped_atoms() {
    let Some(dir) = ligand_dir() else { return };
    let s = read_ligand_structure(&dir.join("structures/ligand_quirks.pdb"), &ParseOptions::default()).unwrap();
    let kinds: BTreeSet<String> = s.notes.iter().map(|n| format!("{:?}", n.kind)).collect();
    let want: BTreeSet<String> = ["Hydrogen", "EmptyElement", "Molybdenum"].iter().map(|s| s.to_string()).collect();
    assert_eq!(kinds, want);
    let h = s.notes.iter().find(|n| n.kind == DroppedKind::Hydrogen).unwrap();
    assert_eq!(h.atoms.len(), 5, "four H and one D");
    let mo = s.notes.iter().find(|n| n.kind == DroppedKind::Molybdenum).unwrap();
    assert!(mo.describe(&s).contains("MO MO A203"), "{}", mo.describe(&s));
    // Residues: A16 (only altloc B) and A20 (CA at occupancy 0) are not residues.
    let names = s.residue_names();
    assert!(!names.contains(&"A16".to_string()) && !names.contains(&"A20".to_string()));
    assert!(names.contains(&"A10A".to_string()) && names.contains(&"A10B".to_string()));
    // The protein part of the output PDB is the backbone selection: A20's N, C, O stay.
    let a20: Vec<&str> =
        s.backbone.iter().filter(|a| a.chain == "A" && a.resnum == 20).map(|a| a.name.as_str()).collect();
    assert_eq!(a20, vec!["N", "C", "O"]);
    // The backbone is not 4 atoms per residue (run.py fails writing it); each atom's residue:
    let owners = s.backbone_residues();
    assert_eq!(s.backbone.len(), 4 * s.len() + 3);
    for (a, owner) in s.backbone.iter().zip(&owners) {
        match owner {
            Some(i) => assert_eq!(s.ids[*i].to_string(), format!("{}{}{}", a.chain, a.resnum, a.icode)),
            None => assert_eq!((a.chain.as_str(), a.resnum), ("A", 20)),
        }
    }
    assert_eq!(owners.iter().filter(|o| o.is_none()).count(), 3);
    let with0 = read_ligand_structure(
        &dir.join("structures/ligand_quirks.pdb"),
        &ParseOptions { parse_atoms_with_zero_occupancy: true, ..Default::default() },
    )
    .unwrap();
    assert_eq!(with0.len(), s.len() + 1);
}

/// Writes the ATOM/HETATM records of a PDB (first model) as an mmCIF `_atom_site` loop.
fn pdb_to_mmcif(pdb: &str) -> String {
    let mut out = String::from(
        "data_test\nloop_\n_atom_site.group_PDB\n_atom_site.id\n_atom_site.type_symbol\n_atom_site.label_atom_id\n\
         _atom_site.label_alt_id\n_atom_site.label_comp_id\n_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n\
         _atom_site.pdbx_PDB_ins_code\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n\
         _atom_site.occupancy\n_atom_site.B_iso_or_equiv\n_atom_site.pdbx_PDB_model_num\n",
    );
    let quote = |s: &str, empty: &str| -> String {
        let s = s.trim();
        if s.is_empty() {
            empty.to_string()
        } else if s.contains('\'') {
            format!("\"{s}\"")
        } else {
            format!("'{s}'")
        }
    };
    for line in pdb.lines() {
        let rec = line.get(0..6).unwrap_or("").trim();
        if rec == "ENDMDL" {
            break;
        }
        if rec != "ATOM" && rec != "HETATM" {
            continue;
        }
        let col = |a: usize, b: usize| line.get(a..b.min(line.len())).unwrap_or("");
        out.push_str(&format!(
            "{rec} {} {} {} {} {} {} {} {} {} {} {} {} {} 1\n",
            col(6, 11).trim(),
            quote(col(76, 78), "?"),
            quote(col(12, 16), "?"),
            quote(col(16, 17), "."),
            quote(col(17, 20), "?"),
            quote(col(21, 22), "?"),
            col(22, 26).trim(),
            quote(col(26, 27), "?"),
            col(30, 38).trim(),
            col(38, 46).trim(),
            col(46, 54).trim(),
            quote(col(54, 60), "0"),
            quote(col(60, 66), "0"),
        ));
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn features_of(s: &LigandStructure) -> Featurized {
    let l = s.len();
    let mut o = ContextOptions::ligand(25);
    o.side_chain_context = true;
    featurize(s, &o, &vec![1.0; l], &vec![[0.0; 21]; l], None).unwrap()
}

/// Everything but where it came from (file name, line numbers).
fn same_structure(what: &str, a: &LigandStructure, b: &LigandStructure) {
    assert_eq!(a.ids, b.ids, "{what}: ids");
    assert_eq!(a.resnames, b.resnames, "{what}: resnames");
    assert_eq!(a.chain_labels, b.chain_labels, "{what}: chain labels");
    assert_eq!(a.s, b.s, "{what}: S");
    assert_eq!(a.xyz_37, b.xyz_37, "{what}: xyz_37");
    assert_eq!(a.xyz_37_m, b.xyz_37_m, "{what}: xyz_37_m");
    assert_eq!(a.context_xyz, b.context_xyz, "{what}: context coordinates");
    assert_eq!(a.context_types, b.context_types, "{what}: context types");
    assert_eq!(a.other_atoms.len(), b.other_atoms.len(), "{what}: other atoms");
    assert_eq!(a.backbone.len(), b.backbone.len(), "{what}: backbone atoms");
    assert_eq!(a.water_atoms, b.water_atoms, "{what}: waters");
    assert_eq!(features_of(a), features_of(b), "{what}: features");
}

#[test]
fn pdb_mmcif_and_gzip_give_the_same_features() {
    let Some(dir) = ligand_dir() else { return };
    for file in ["1BC8.pdb", "4oz7.pdb", "ligand_quirks.pdb", "2GFB.pdb", "7v11.pdb"] {
        let bytes = std::fs::read(dir.join("structures").join(file)).unwrap();
        let stem = file.trim_end_matches(".pdb");
        for zero in [false, true] {
            let o = ParseOptions { parse_atoms_with_zero_occupancy: zero, ..Default::default() };
            let pdb = parse_ligand_structure(file, &bytes, &o).unwrap();
            let cif_text = pdb_to_mmcif(&String::from_utf8_lossy(&bytes));
            let cif = parse_ligand_structure(&format!("{stem}.cif"), cif_text.as_bytes(), &o).unwrap();
            same_structure(&format!("{file} as mmCIF"), &pdb, &cif);
            let gz = parse_ligand_structure(&format!("{file}.gz"), &gzip(&bytes), &o).unwrap();
            assert_eq!(gz.name, stem);
            same_structure(&format!("{file}.gz"), &pdb, &gz);
            let cif_gz = parse_ligand_structure(&format!("{stem}.cif.gz"), &gzip(cif_text.as_bytes()), &o).unwrap();
            same_structure(&format!("{stem}.cif.gz"), &pdb, &cif_gz);
        }
    }
    // A real PDB/mmCIF pair from the RCSB (../structures/4GYT.*), ligand Na and waters.
    let pair = dir.join("../structures");
    if pair.join("4GYT.cif").exists() {
        let o = ParseOptions::default();
        let pdb = read_ligand_structure(&pair.join("4GYT.pdb"), &o).unwrap();
        let cif = read_ligand_structure(&pair.join("4GYT.cif"), &o).unwrap();
        assert_eq!(pdb.context_xyz.len(), 2);
        same_structure("4GYT.pdb vs 4GYT.cif", &pdb, &cif);
    }
}

fn quirks(dir: &Path) -> LigandStructure {
    read_ligand_structure(&dir.join("structures/ligand_quirks.pdb"), &ParseOptions::default()).unwrap()
}

#[test]
fn unknown_residue_ids_are_errors_with_nearby_names() {
    let Some(dir) = ligand_dir() else { return };
    let s = quirks(&dir);
    let e = select::chain_mask(&s, "", "A10 A99", "").unwrap_err().to_string();
    assert!(
        e.starts_with("--fixed_residues: residue A99 is not in ligand_quirks.pdb; nearby residues of chain A:"),
        "{e}"
    );
    assert!(e.contains("A45"), "{e}");
    let e = select::chain_mask(&s, "", "", "Z5").unwrap_err().to_string();
    assert!(e.contains("--redesigned_residues") && e.contains("no chain \"Z\"") && e.contains("chains: A, B"), "{e}");
    // A16 has only altloc-B atoms, so it is not a residue.
    let e = select::chain_mask(&s, "", "A16", "").unwrap_err().to_string();
    assert!(e.contains("residue A16 is not in") && e.contains("A15") && e.contains("A17"), "{e}");
    let e = select::chain_mask(&s, "A,C", "", "").unwrap_err().to_string();
    assert_eq!(e, "--chains_to_design: chain \"C\" is not in ligand_quirks.pdb (its chains: A, B)");
    let json: Value = serde_json::json!({"A10": {"G": 1.0}, "B99": {"A": 1.0}});
    let e = select::per_residue_bias(&s, "bias.json", &json).unwrap_err().to_string();
    assert!(e.starts_with("bias.json: residue B99 is not in ligand_quirks.pdb"), "{e}");
    let e = select::membrane_labels(&s, "A1 A1000", "").unwrap_err().to_string();
    assert!(e.starts_with("--transmembrane_buried: residue A1000"), "{e}");
    // Residues that exist but are not designed behave as in the official code.
    let mask = select::chain_mask(&s, "B", "A10", "").unwrap();
    assert!(mask.iter().zip(s.chain_letters()).all(|(&m, c)| (m == 1.0) == (c == "B")));
    let json: Value = serde_json::json!({"A10": {"G": 1.5}});
    let b = select::per_residue_bias(&s, "bias.json", &json).unwrap();
    assert_eq!(b[s.position("A10").unwrap()][5], 1.5);
}

#[test]
fn malformed_bias_and_omit_strings_are_errors() {
    for (text, want) in [
        ("A1.0", "--bias_AA: \"A1.0\" is not LETTER:NUMBER (write e.g. \"A:-1.0,W:1.5\")"),
        ("A:x", "--bias_AA: \"A:x\" is not LETTER:NUMBER (write e.g. \"A:-1.0,W:1.5\")"),
        ("AW:1", "--bias_AA: \"AW:1\" is not LETTER:NUMBER (write e.g. \"A:-1.0,W:1.5\")"),
        ("B:1", "--bias_AA: 'B' is not an amino-acid letter (one of ACDEFGHIKLMNPQRSTVWYX, upper case)"),
    ] {
        assert_eq!(select::parse_bias_aa(text).unwrap_err().to_string(), want, "{text}");
    }
    let b = select::parse_bias_aa("A:-1.0, W:1.5,P:0.7").unwrap();
    assert_eq!((b[0], b[18], b[12]), (-1.0, 1.5, 0.7));
    assert_eq!(
        select::parse_omit_aa("Cm").unwrap_err().to_string(),
        "--omit_AA: 'm' is not an amino-acid letter (one of ACDEFGHIKLMNPQRSTVWYX, upper case)"
    );
    let o = select::parse_omit_aa("C, M").unwrap();
    assert_eq!(o.iter().sum::<f32>(), 2.0);
    // The double -1e8 and the float32 order of operations.
    let all = select::combine_bias(1, &b, &o, Some(&[[1.0; 21]]), Some(&[o]));
    assert_eq!(all[0][1], -2e8);
    assert_eq!(all[0][18], 2.5);
}

#[test]
fn malformed_symmetry_strings_are_errors() {
    let Some(dir) = ligand_dir() else { return };
    let s = quirks(&dir);
    let err = |r: &str, w: &str| select::symmetry(&s, r, w).unwrap_err().to_string();
    assert_eq!(
        err("A1,B1|A2,", "0.5,0.5|0.5,0.5"),
        "--symmetry_residues: group 2 (\"A2,\") has an empty residue name; write groups as A1,B1|A2,B2"
    );
    assert_eq!(
        err("A1,B1", "0.5,x"),
        "--symmetry_weights: \"x\" in group 1 is not a number; write weights as 0.5,0.5|0.5,0.5"
    );
    assert_eq!(
        err("A1,B1|A2,B2", "0.5,0.5"),
        "--symmetry_weights: group sizes [2] do not match --symmetry_residues group sizes [2, 2]; give one weight per residue"
    );
    assert_eq!(
        err("A1,B1", ""),
        "--symmetry_residues: given without --symmetry_weights; give one weight per residue, e.g. \"0.5,0.5\""
    );
    assert!(err("A1,B1|B1,A2", "1,1|1,1").contains("residue B1 is in group 1 and group 2"));
    assert!(err("A1,B77", "1,1").starts_with("--symmetry_residues: residue B77 is not in ligand_quirks.pdb"));
    let ok = select::symmetry(&s, "A1,B1|A10A,A10B", "0.7,0.3|1.0,-0.5").unwrap();
    let p = |n: &str| s.position(n).unwrap();
    assert_eq!(ok.groups, vec![vec![p("A1"), p("B1")], vec![p("A10A"), p("A10B")]]);
    assert_eq!(ok.groups[1], vec![p("A10") + 1, p("A10") + 2]);
    assert_eq!(ok.weights, vec![vec![0.7, 0.3], vec![1.0, -0.5]]);
    // Homo-oligomer over chains of different numbering: a clear error.
    let e = select::homo_oligomer(&s, None).unwrap_err().to_string();
    assert!(
        e.starts_with("--homo_oligomer: chain B has no residue B16 matching A16") || e.contains("has no residue"),
        "{e}"
    );
}

#[test]
fn bad_structures_are_errors_naming_the_file() {
    let o = ParseOptions::default();
    let cases: [(&str, &str, &str); 6] = [
        (
            "short.pdb",
            "ATOM      1  CA  GLY A   1      1.000\n",
            "short.pdb line 1: ATOM record is only 37 characters long",
        ),
        (
            "nan.pdb",
            "ATOM      1  CA  GLY A   1         nan   2.000   3.000  1.00  0.00           C\n",
            "nan.pdb line 1: x coordinate \"nan\" (columns 31-38) is not a finite number",
        ),
        (
            "far.pdb",
            "ATOM      1  CA  GLY A   1       1.000  2.0e06   3.000  1.00  0.00           C\n",
            "far.pdb line 1: y coordinate 2000000 is out of range (|x| must be at most 100000 Å)",
        ),
        (
            "lig.pdb",
            "HETATM    1  C1  LIG A   1       1.000   2.000   3.000  1.00  0.00           C\n",
            "lig.pdb: no protein residues",
        ),
        (
            "occ.pdb",
            "ATOM      1  CA  GLY A   1       1.000   2.000   3.000  0.00  0.00           C\n",
            "occ.pdb: every atom has occupancy 0",
        ),
        (
            "dup.pdb",
            "ATOM      1  CA  GLY A   1       1.000   2.000   3.000  1.00  0.00           C\n\
             ATOM      2  CA AGLY A   1       1.000   2.000   3.000  1.00  0.00           C\n",
            "dup.pdb: residue A1 has two CA atoms (lines 1 and 2",
        ),
    ];
    for (file, text, want) in cases {
        let e = parse_ligand_structure(file, text.as_bytes(), &o).unwrap_err().to_string();
        assert!(e.starts_with(want), "{file}: {e}");
    }
    let bare = "ATOM      1  CA  GLY A   1       1.000   2.000   3.000\n";
    let e = parse_ligand_structure("bare.pdb", bare.as_bytes(), &o).unwrap_err().to_string();
    assert!(
        e.starts_with("bare.pdb: every atom has occupancy 0 (1 have no readable occupancy in columns 55-60"),
        "{e}"
    );
    let s = parse_ligand_structure(
        "bare.pdb",
        bare.as_bytes(),
        &ParseOptions { parse_atoms_with_zero_occupancy: true, ..Default::default() },
    )
    .unwrap();
    assert_eq!((s.len(), s.unreadable_occupancy), (1, 1));
    let one = "ATOM      1  CA  GLY A   1       1.000   2.000   3.000  1.00  0.00           C\n";
    let e = parse_ligand_structure("one.pdb", one.as_bytes(), &ParseOptions { chains: vec!["B".into()], ..o.clone() })
        .unwrap_err()
        .to_string();
    assert_eq!(e, "one.pdb: no atoms in chain(s) B (parse_these_chains_only); the file has chains A");
    let s = parse_ligand_structure("one.pdb", one.as_bytes(), &o).unwrap();
    assert_eq!(s.context_status(), ContextStatus::None);
    assert_eq!(s.context_arrays(), (vec![[0.0; 3]], vec![0], vec![0]));
}

/// The atom records are what `run.py` writes to `backbones/NAME_N.pdb`: ProDy's `backbone`
/// followed by `other_atoms`, field by field (residue names of the protein part are the designed
/// ones there; B-factors are per-residue confidences and 0 for the other atoms).
#[test]
fn records_are_the_atoms_of_the_official_output_pdbs() {
    let Some(dir) = ligand_dir() else { return };
    for (run, file, chains) in
        [("run_1BC8", "1BC8.pdb", ""), ("run_2GFB_icodes", "2GFB.pdb", "B"), ("run_4GYT_homo", "4GYT.pdb", "")]
    {
        let chains = if chains.is_empty() { Vec::new() } else { vec![chains.to_string()] };
        let s =
            read_ligand_structure(&dir.join("structures").join(file), &ParseOptions { chains, ..Default::default() })
                .unwrap();
        let out_path = dir.join("official_cli").join(run).join("backbones").join(format!("{}_1.pdb", s.name));
        let out = std::fs::read_to_string(&out_path).unwrap();
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM")).collect();
        let anisou: Vec<&str> = out.lines().filter(|l| l.starts_with("ANISOU")).collect();
        let records: Vec<_> =
            s.backbone.iter().map(|r| (r, true)).chain(s.other_atoms.iter().map(|r| (r, false))).collect();
        assert_eq!(lines.len(), records.len(), "{run}: atom count");
        assert_eq!(s.has_anisou, !anisou.is_empty(), "{run}: ANISOU");
        for (k, (line, (r, protein))) in lines.iter().zip(&records).enumerate() {
            let what = format!("{run} atom {}: {line}", k + 1);
            assert_eq!(line.starts_with("HETATM"), r.hetatm, "{what}");
            assert_eq!(line[12..16].trim(), r.name, "{what}");
            assert_eq!(line[16..17].chars().next().unwrap(), r.altloc, "{what}");
            assert_eq!(line[21..22].trim(), r.chain, "{what}");
            assert_eq!(line[22..26].trim().parse::<i32>().unwrap(), r.resnum, "{what}");
            assert_eq!(line[26..27].trim(), r.icode, "{what}");
            let xyz: String = r.xyz.iter().map(|v| format!("{v:8.3}")).collect();
            assert_eq!(&line[30..54], xyz, "{what}");
            assert_eq!(&line[54..60], format!("{:6.2}", r.occupancy), "{what}");
            assert_eq!(line[76..78].trim(), r.element, "{what}");
            if !protein {
                assert_eq!(line[17..20].trim(), r.resname, "{what}");
                assert_eq!(&line[60..66], "  0.00", "{what}");
            }
            if s.has_anisou {
                let u = r.anisou.unwrap_or([0.0; 6]).map(|v| (v / 10000.0 * 10000.0) as i64);
                let written: Vec<i64> = anisou[k][28..70].split_whitespace().map(|t| t.parse().unwrap()).collect();
                assert_eq!(written, u, "{what}: ANISOU");
            }
        }
    }
}

/// Parses, selects and featurizes; every step may fail, none may panic.
fn run_all(file: &str, bytes: &[u8]) {
    for zero in [false, true] {
        let o = ParseOptions { parse_atoms_with_zero_occupancy: zero, ..Default::default() };
        let Ok(s) = parse_ligand_structure(file, bytes, &o) else { continue };
        assert!(!s.is_empty());
        assert!(s.context_types.iter().all(|&t| t > 1));
        let first = s.residue_names()[0].clone();
        let flags = select::RunFlags {
            fixed_residues: first.clone(),
            symmetry_residues: first,
            symmetry_weights: "1.0".into(),
            bias_aa: "A:1.0".into(),
            omit_aa: "C".into(),
            ..Default::default()
        };
        let sel = select::selections(&s, &flags, select::MembraneLabels::PerResidue).unwrap();
        let _ = select::homo_oligomer(&s, None);
        for m in [0, 16] {
            let f = featurize(&s, &ContextOptions::ligand(m), &sel.chain_mask, &sel.bias, None).unwrap();
            assert_eq!(f.features.y.len(), s.len() * m);
            assert!(f.features.y.iter().flatten().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn every_stress_structure_parses_or_fails_cleanly() {
    let Some(dir) = common::parity_dir() else { return };
    let (mut n, mut skipped) = (0, 0);
    for sub in ["stress", "structures", "ligand/structures"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".pdb") || name.ends_with(".cif") {
                let bytes = std::fs::read(&path).unwrap();
                run_all(&name, &bytes);
                n += 1;
                // The native path's cheap pre-check never skips a file that has context atoms.
                if !mpnn::ligand::parse::may_have_context(&name, &bytes) {
                    skipped += 1;
                    if let Ok(s) = parse_ligand_structure(&name, &bytes, &ParseOptions::default()) {
                        assert!(s.other_atoms.is_empty(), "{name}: pre-check said no context, parse found some");
                    }
                }
            }
        }
    }
    assert!(n > 20, "only {n} structures found");
    assert!(skipped > 0, "the pre-check skipped none of {n} structures");
    eprintln!("{skipped} of {n} structures need no LigandMPNN parse for the context warning");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn seeds() -> &'static Vec<(String, Vec<u8>)> {
        static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
        SEEDS.get_or_init(|| {
            let mut v = Vec::new();
            if let Some(dir) = common::parity_dir() {
                for f in ["ligand_quirks.pdb", "4oz7.pdb", "ligand_hydrogen_only.pdb"] {
                    if let Ok(b) = std::fs::read(dir.join("ligand/structures").join(f)) {
                        v.push((f.to_string(), b.clone()));
                        let cif = pdb_to_mmcif(&String::from_utf8_lossy(&b));
                        v.push((f.replace(".pdb", ".cif"), cif.into_bytes()));
                    }
                }
            }
            v.push((
                "s.pdb".into(),
                b"ATOM      1  CA  GLY A   1       1.000   2.000   3.000  1.00  0.00           C\n\
                  HETATM    2 ZN   ZN  A   2       1.000   2.000   3.000  1.00  0.00          ZN\n"
                    .to_vec(),
            ));
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn mutated_files_never_panic(
            pick in 0usize..64,
            edits in proptest::collection::vec((0usize..1_000_000, any::<u8>()), 0..12),
            cut in proptest::option::of(0usize..1_000_000),
        ) {
            let seeds = seeds();
            let (name, bytes) = &seeds[pick % seeds.len()];
            let mut b = bytes.clone();
            for (pos, byte) in edits {
                let i = pos % b.len().max(1);
                if i < b.len() {
                    b[i] = byte;
                }
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            run_all(name, &b);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), cif in any::<bool>()) {
            run_all(if cif { "r.cif" } else { "r.pdb" }, &bytes);
        }
    }
}
