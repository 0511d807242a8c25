//! Parity of the structure readers with the official parser, on the fixtures in `shared/parity`
//! (override with `MPNN_PARITY_DIR`).

use std::path::{Path, PathBuf};

use mpnn::alphabet::index_of;
use mpnn::npz::Npz;
use mpnn::structure::{parse_bytes, read_path, read_structure, Protein, StructureError};

fn parity_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MPNN_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/parity"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("parity fixtures not found at {} (CI=true)", dir.display());
    }
    println!("skipped: parity fixtures not found");
    None
}

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/official-outputs")
}

/// Residues of `chains` concatenated: ([residue][atom][xyz] f32 with NaN → 0, S, mask).
fn featurize(p: &Protein, order: &[String], ca_only: bool) -> (Vec<f32>, Vec<i64>, Vec<f32>) {
    let (mut x, mut s, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for id in order {
        let c = p.chain(id).unwrap_or_else(|| panic!("{}: chain {id} missing", p.name));
        for (res, letter) in c.coords.iter().zip(c.sequence.chars()) {
            let atoms: &[usize] = if ca_only { &[1] } else { &[0, 1, 2, 3] };
            let mut finite = true;
            for &k in atoms {
                for &v in &res[k] {
                    finite &= v.is_finite();
                    x.push(if v.is_nan() { 0.0 } else { v as f32 });
                }
            }
            m.push(if finite { 1.0 } else { 0.0 });
            s.push(index_of(letter).unwrap_or(20) as i64);
        }
    }
    (x, s, m)
}

fn check_case(dir: &Path, case: &Path) -> usize {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(case).unwrap()).unwrap();
    let pdb = json["pdb"].as_str().unwrap();
    let ca_only = json["ca_only"].as_bool().unwrap();
    let order: Vec<String> =
        json["chain_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let npz = Npz::read(case.with_extension("npz")).unwrap();
    let (x_ref, s_ref, m_ref) = (npz.f32("X").unwrap(), npz.i64("S").unwrap(), npz.f32("mask").unwrap());
    let shape = npz.shape("X").unwrap();
    let l = s_ref.len();
    assert_eq!(shape, if ca_only { vec![1, l, 3] } else { vec![1, l, 4, 3] });
    let mut checked = 0;
    let stem = Path::new(pdb).file_stem().unwrap().to_str().unwrap();
    for file in [pdb.to_string(), format!("{stem}.cif")] {
        let path = dir.join("structures").join(&file);
        if !path.exists() {
            continue;
        }
        let p = read_structure(&path).unwrap();
        p.validate(ca_only).unwrap();
        assert_eq!(p.name, stem);
        let (x, s, m) = featurize(&p, &order, ca_only);
        assert_eq!(s, s_ref, "{case:?} {file}: S");
        assert_eq!(m, m_ref, "{case:?} {file}: mask");
        assert_eq!(x.len(), x_ref.len(), "{case:?} {file}: X length");
        for (i, (a, b)) in x.iter().zip(&x_ref).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{case:?} {file}: X[{i}] {a} vs {b}");
        }
        checked += 1;
    }
    assert!(checked >= 1);
    checked
}

#[test]
fn every_case_matches_official_featurization() {
    let Some(dir) = parity_dir() else { return };
    let mut n = 0;
    for entry in glob::glob(&format!("{}/*.json", dir.display())).unwrap() {
        let case = entry.unwrap();
        n += check_case(&dir, &case);
    }
    assert!(n >= 11, "only {n} structure checks ran");
}

#[test]
fn cif_twins_parse_identically() {
    let Some(dir) = parity_dir() else { return };
    let mut n = 0;
    for entry in glob::glob(&format!("{}/structures/*.cif", dir.display())).unwrap() {
        let cif = entry.unwrap();
        let pdb = cif.with_extension("pdb");
        let a = read_structure(&pdb).unwrap();
        let b = read_structure(&cif).unwrap();
        assert_eq!(a.name, b.name);
        assert_eq!(a.chain_ids(), b.chain_ids(), "{cif:?}");
        for (ca, cb) in a.chains.iter().zip(&b.chains) {
            assert_eq!(ca.sequence, cb.sequence, "{cif:?} chain {}", ca.id);
            assert_eq!(ca.coords.len(), cb.coords.len());
            for (ra, rb) in ca.coords.iter().zip(&cb.coords) {
                for (pa, pb) in ra.iter().flatten().zip(rb.iter().flatten()) {
                    assert_eq!(pa.to_bits(), pb.to_bits(), "{cif:?} chain {}", ca.id);
                }
            }
        }
        n += 1;
    }
    assert!(n >= 6, "only {n} cif twins");
}

#[test]
fn quirks_are_read_like_the_official_parser() {
    let Some(dir) = parity_dir() else { return };
    let p = read_structure(&dir.join("structures/quirks.pdb")).unwrap();
    assert_eq!(p.chain_ids(), vec!["A", "B"], "the water chain disappears");
    let a = p.chain("A").unwrap();
    let full = read_structure(&dir.join("structures/5L33.pdb")).unwrap();
    let f = &full.chains[0];
    // Residue numbering of 5L33 starts at -1: position of residue r is r + 1.
    let pos = |r: usize| r + 1;
    for r in 20..=22 {
        assert_eq!(a.sequence.as_bytes()[pos(r)], b'-', "gap at {r}");
        assert!(a.coords[pos(r)].iter().flatten().all(|x| x.is_nan()));
    }
    assert!(a.coords[pos(40)][3].iter().all(|x| x.is_nan()), "missing O at 40");
    assert!(a.coords[pos(40)][1].iter().all(|x| x.is_finite()));
    assert_eq!(a.sequence.as_bytes()[pos(32)], b'M', "HETATM MSE read as MET");
    assert_eq!(a.sequence.as_bytes()[pos(44)], b'-', "UNK");
    assert_eq!(a.coords[pos(50)], f.coords[pos(50)], "first altloc wins");
    // 60A follows 60: chain A is one longer than the numbering span.
    assert_eq!(a.sequence.len(), pos(69) + 1 + 1);
    assert!(p.chain("B").is_some_and(|b| !b.sequence.is_empty()));
}

#[test]
fn official_jsonl_matches_parsed_pdbs() {
    let Some(dir) = parity_dir() else { return };
    let mut n = 0;
    let mut max_diff = 0.0f64;
    for entry in glob::glob(&format!("{}/*/parsed_pdbs.jsonl", reference_dir().display())).unwrap() {
        let jsonl = entry.unwrap();
        let entries = read_path(&jsonl).unwrap();
        assert!(!entries.is_empty());
        for e in entries {
            let pdb = read_structure(&dir.join(format!("structures/{}.pdb", e.name))).unwrap();
            assert_eq!(e.chain_ids(), pdb.chain_ids(), "{jsonl:?} {}", e.name);
            for (ce, cp) in e.chains.iter().zip(&pdb.chains) {
                assert_eq!(ce.sequence, cp.sequence, "{jsonl:?} {} {}", e.name, ce.id);
                for (re, rp) in ce.coords.iter().zip(&cp.coords) {
                    for (a, b) in re.iter().flatten().zip(rp.iter().flatten()) {
                        assert_eq!(a.is_nan(), b.is_nan());
                        if a.is_finite() {
                            max_diff = max_diff.max((a - b).abs());
                        }
                    }
                }
            }
            // Writing it back gives the official line byte for byte.
            n += 1;
        }
        let text = std::fs::read_to_string(&jsonl).unwrap();
        let ours: String =
            read_path(&jsonl).unwrap().iter().map(|p| mpnn::structure::to_jsonl_line(p, false) + "\n").collect();
        assert_eq!(ours, text, "{jsonl:?}: writer output differs from the official file");
    }
    assert!(max_diff <= 1e-6, "max coordinate difference {max_diff}");
    assert!(n >= 2);
    // example_1's 5L33 entry equals parsing the PDB exactly.
    let ex1 = read_path(&reference_dir().join("example_1_outputs/parsed_pdbs.jsonl")).unwrap();
    let e = ex1.iter().find(|p| p.name == "5L33").unwrap();
    let pdb = read_structure(&dir.join("structures/5L33.pdb")).unwrap();
    assert_eq!(format!("{e:?}"), format!("{pdb:?}"));
}

#[test]
fn gzip_is_detected_by_content() {
    let Some(dir) = parity_dir() else { return };
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    for (src, dst) in [("5L33.pdb", "5L33.pdb.gz"), ("5L33.cif", "5L33.cif.gz"), ("5L33.pdb", "5L33.ent")] {
        let bytes = std::fs::read(dir.join("structures").join(src)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let path = tmp.path().join(dst);
        std::fs::write(&path, &gz).unwrap();
        let a = read_structure(&path).unwrap();
        let b = read_structure(&dir.join("structures").join(src)).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{dst}");
        assert_eq!(a.name, "5L33");
        // Truncated gzip is an error, not a panic.
        let cut = tmp.path().join(format!("cut-{dst}"));
        std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
        let err = read_structure(&cut).unwrap_err().to_string();
        assert!(err.contains("gzip") && err.contains(&format!("cut-{dst}")), "{err}");
    }
    // mmCIF content in a .pdb-named file is still read as mmCIF.
    let cif = std::fs::read(dir.join("structures/5L33.cif")).unwrap();
    let p = parse_bytes("mislabelled.pdb", &cif).unwrap();
    assert_eq!(p[0].chain_ids(), vec!["A"]);
}

fn pdb_err(text: impl AsRef<[u8]>) -> String {
    let text = text.as_ref();
    match mpnn::structure::parse_pdb_bytes("x.pdb", text) {
        Ok(p) => match p.validate(false) {
            Ok(()) => panic!("accepted: {text:?}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

const GOOD: &str = "ATOM      1  N   GLY A   1      11.104   6.134  -6.504  1.00  0.00           N";

#[test]
fn error_messages_name_file_line_and_problem() {
    let e = pdb_err(format!("HEADER\n{}", GOOD.replace("  11.104", "  12.3a5")));
    assert_eq!(e, "x.pdb line 2: x coordinate \"12.3a5\" (columns 31-38) is not a number");
    let e = pdb_err(GOOD.replace("  -6.504", "     nan"));
    assert!(e.starts_with("x.pdb line 1: z coordinate \"nan\"") && e.contains("not a finite number"), "{e}");
    let e = pdb_err(&GOOD[..40]);
    assert!(e.starts_with("x.pdb line 1: ATOM record is only 38 characters") && e.contains("truncated"), "{e}");
    let e = pdb_err("");
    assert!(e.contains("x.pdb: no ATOM records found"), "{e}");
    let e = pdb_err(b"garbage\x00\xff\nmore garbage");
    assert_eq!(e, "x.pdb: no ATOM records found (is this a PDB file? for mmCIF use .cif)");
    let e = pdb_err("HETATM    1  O   HOH W   1      11.104   6.134  -6.504  1.00  0.00           O\nEND\n");
    assert!(e.contains("only HETATM"), "{e}");
    let e = pdb_err(GOOD.replace("GLY A   1", "GLY A   X"));
    assert!(e.starts_with("x.pdb line 1: residue number \"X\""), "{e}");
    let e = pdb_err(GOOD.replace("GLY A", "GLY  "));
    assert!(e.contains("chain id"), "{e}");
    // Only N of the residue: parses, but no usable residue.
    let e = pdb_err(GOOD);
    assert!(e.contains("no usable residue"), "{e}");
    // A chain without usable residues next to a good one is accepted (official 4YOW has such chains).
    let two = format!(
        "{}\n{}",
        GOOD.replace("GLY A", "GLY B"),
        ["N", "CA", "C", "O"].map(|a| GOOD.replace(" N   GLY", &format!(" {a:<3} GLY"))).join("\n")
    );
    let p = mpnn::structure::parse_pdb_bytes("x.pdb", two.as_bytes()).unwrap();
    p.validate(false).unwrap();
    assert_eq!(p.unusable_chains(false), vec!["B"]);
    let e = pdb_err(GOOD.replace("  11.104", "999999.0"));
    assert!(e.contains("out of range"), "{e}");

    let cif = |s: &str| mpnn::structure::parse_mmcif_bytes("y.cif", s.as_bytes()).unwrap_err().to_string();
    let head = "data_y\nloop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n";
    let e = cif(&format!("{head}ATOM N GLY A 1 1.0 2.0 3.0\nATOM CA GLY A 1 1.0 2.0\n"));
    assert!(e.starts_with("y.cif line 12:") && e.contains("truncated"), "{e}");
    let e = cif(&format!("{head}ATOM N GLY A 1 1.0 nan 3.0\n"));
    assert!(e.starts_with("y.cif line 11: Cartn_y \"nan\""), "{e}");
    let e = cif(&format!("{head}ATOM N GLY A 1 1.0 ? 3.0\n"));
    assert!(e.contains("Cartn_y \"?\" is not a number"), "{e}");
    let e = cif(&format!("{head}HETATM O HOH W 1 1.0 2.0 3.0\n"));
    assert!(e.contains("only HETATM"), "{e}");
    let e = cif("");
    assert!(e.contains("y.cif: no ATOM records found"), "{e}");
    let e = cif(&format!("{head}ATOM N 'GLY A 1 1.0 2.0 3.0\n"));
    assert!(e.contains("line 11") && e.contains("not closed"), "{e}");

    let jl = |s: &str| mpnn::structure::parse_jsonl_bytes("z.jsonl", s.as_bytes()).unwrap_err().to_string();
    let e = jl("\n{\"name\": \"a\"\n");
    assert!(e.starts_with("z.jsonl line 2: not a valid JSON object"), "{e}");
    let e = jl("{\"name\": \"a\", \"seq_chain_A\": \"GG\", \"coords_chain_A\": {\"CA_chain_A\": [[1,2,3]]}}");
    assert!(e.contains("CA_chain_A has 1 positions but the sequence has 2"), "{e}");
    let e = jl("");
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn ca_only_jsonl_round_trip() {
    let Some(dir) = parity_dir() else { return };
    let p = read_structure(&dir.join("structures/3HTN.pdb")).unwrap();
    let line = mpnn::structure::to_jsonl_line(&p, true);
    assert!(!line.contains("\"N_chain_A\""));
    let q = mpnn::structure::parse_jsonl_line("t.jsonl", 1, &line).unwrap();
    q.validate(true).unwrap();
    assert!(matches!(q.validate(false), Err(StructureError::Invalid { .. })));
    for (a, b) in p.chains.iter().zip(&q.chains) {
        assert_eq!(a.sequence, b.sequence);
        for (ra, rb) in a.coords.iter().zip(&b.coords) {
            assert_eq!(ra[1].map(f64::to_bits), rb[1].map(f64::to_bits));
            assert!(rb[0].iter().all(|x| x.is_nan()));
        }
    }
}
