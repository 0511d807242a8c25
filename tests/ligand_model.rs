//! The LigandMPNN-family network against the official intermediates and outputs of every case in
//! `../shared/parity/ligand` (see its README): features built straight from each case's npz
//! arrays, so these tests check the network alone (the parser has its own).

mod common;

use std::path::{Path, PathBuf};

use mpnn::alphabet::VOCAB;
use mpnn::checkpoint;
use mpnn::ligand::network::single_aa_order;
use mpnn::ligand::sample::{seeded_chooser, seeded_randn, Argmax, Forced, DRAWN};
use mpnn::ligand::{LigandEncoded, LigandFeatures, LigandModelError, LigandMpnn, ModelType, SampleOptions};
use mpnn::npz::Npz;

const TOL: f32 = 1e-4;

/// `../shared/parity/ligand` (or `$MPNN_PARITY_DIR/ligand`); `None` (skipped) when absent
/// outside CI.
fn ligand_dir() -> Option<PathBuf> {
    let dir = common::parity_dir()?.join("ligand");
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("LigandMPNN fixtures not found at {} (required under CI)", dir.display());
    }
    eprintln!("skipped: LigandMPNN fixtures not found at {}", dir.display());
    None
}

struct Case {
    name: String,
    json: serde_json::Value,
    npz: Npz,
    model: LigandMpnn,
    features: LigandFeatures,
    randn: Vec<f32>,
}

impl Case {
    fn f32s(&self, name: &str) -> Vec<f32> {
        self.npz.f32(name).unwrap()
    }
    fn has(&self, name: &str) -> bool {
        self.npz.has(name)
    }
    fn symmetry(&self) -> (Vec<Vec<usize>>, Vec<Vec<f32>>) {
        let groups: Vec<Vec<usize>> = self.json["symmetry_residues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect())
            .filter(|g: &Vec<usize>| !g.is_empty())
            .collect();
        let weights: Vec<Vec<f32>> = self.json["symmetry_weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
            .filter(|g: &Vec<f32>| !g.is_empty())
            .collect();
        (groups, weights)
    }
    fn options(&self) -> SampleOptions {
        let (symmetry_residues, symmetry_weights) = self.symmetry();
        SampleOptions {
            temperature: self.json["temperature"].as_f64().unwrap() as f32,
            symmetry_residues,
            symmetry_weights,
        }
    }
}

/// Every case with featurized arrays (not those that failed before `featurize`).
fn cases(dir: &Path) -> Vec<String> {
    common::cases(dir).into_iter().filter(|c| Npz::read(dir.join(format!("{c}.npz"))).unwrap().has("X")).collect()
}

fn points<const N: usize>(v: &[f32]) -> Vec<[[f32; 3]; N]> {
    v.chunks_exact(3 * N)
        .map(|r| {
            let mut out = [[0f32; 3]; N];
            for (a, o) in out.iter_mut().enumerate() {
                o.copy_from_slice(&r[a * 3..a * 3 + 3]);
            }
            out
        })
        .collect()
}

/// The official `feature_dict` of a case, straight from its arrays.
fn features(npz: &Npz, model_type: ModelType) -> LigandFeatures {
    let f = |n: &str| npz.f32(n).unwrap();
    let i = |n: &str| npz.i64(n).unwrap().into_iter().map(|v| v as i32).collect::<Vec<i32>>();
    let l = npz.shape("S").unwrap()[1];
    let (atom_context_num, y, y_t, y_m) = if model_type.has_atom_context() {
        let m = npz.shape("Y").unwrap()[2];
        (m, points::<1>(&f("Y")).into_iter().map(|p| p[0]).collect(), i("Y_t"), f("Y_m"))
    } else {
        (0, Vec::new(), Vec::new(), Vec::new())
    };
    LigandFeatures {
        x: points::<4>(&f("X")),
        s: i("S").into_iter().map(|v| v as u8).collect(),
        mask: f("mask"),
        r_idx: i("R_idx"),
        r_idx_original: i("R_idx_original"),
        chain_labels: i("chain_labels"),
        chain_mask: f("chain_mask"),
        xyz_37: points::<37>(&f("xyz_37")),
        xyz_37_m: f("xyz_37_m")
            .chunks_exact(37)
            .map(|r| {
                let mut o = [0f32; 37];
                o.copy_from_slice(r);
                o
            })
            .collect(),
        atom_context_num,
        y,
        y_t,
        y_m,
        mask_xy: if npz.has("mask_XY") { f("mask_XY") } else { vec![0.0; l] },
        membrane_labels: npz.has("membrane_per_residue_labels").then(|| i("membrane_per_residue_labels")),
        bias: f("bias")
            .chunks_exact(VOCAB)
            .map(|r| {
                let mut o = [0f32; VOCAB];
                o.copy_from_slice(r);
                o
            })
            .collect(),
    }
}

fn load(dir: &Path, name: &str) -> Case {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let npz = Npz::read(dir.join(format!("{name}.npz"))).unwrap();
    let model_type: ModelType = json["model_type"].as_str().unwrap().parse().unwrap();
    let side_chains = json["flags"]["ligand_mpnn_use_side_chain_context"].as_i64().unwrap_or(0) == 1;
    let model = LigandMpnn::load(&dir.join(json["checkpoint"].as_str().unwrap()), model_type)
        .unwrap()
        .with_side_chain_context(side_chains);
    let features = features(&npz, model_type);
    let randn = npz.f32("randn").unwrap();
    Case { name: name.to_string(), json, npz, model, features, randn }
}

/// Collects failures so that one run reports every mismatch of every case.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    checks: usize,
}

impl Report {
    fn close(&mut self, case: &str, what: &str, got: &[f32], want: &[f32]) {
        self.checks += 1;
        if got.len() != want.len() {
            self.failures.push(format!("{case}: {what}: {} values, official {}", got.len(), want.len()));
            return;
        }
        let (mut worst, mut at) = (0f32, 0);
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let d = (a - b).abs();
            if d > worst || d.is_nan() {
                worst = if d.is_nan() { f32::INFINITY } else { d };
                at = i;
            }
        }
        if worst > TOL {
            self.failures
                .push(format!("{case}: {what}: max |diff| {worst:e} at {at} (got {}, official {})", got[at], want[at]));
        }
    }
    fn exact<T: PartialEq + std::fmt::Debug>(&mut self, case: &str, what: &str, got: &[T], want: &[T]) {
        self.checks += 1;
        if got != want {
            let at = got.iter().zip(want).position(|(a, b)| a != b);
            self.failures.push(format!(
                "{case}: {what} differs (lengths {} / {}, first difference at {at:?})",
                got.len(),
                want.len()
            ));
        }
    }
    fn finish(self, what: &str) {
        eprintln!("{what}: {} checks, {} failures", self.checks, self.failures.len());
        assert!(self.failures.is_empty(), "{what}:\n{}", self.failures.join("\n"));
        assert!(self.checks > 0, "{what}: nothing was checked");
    }
}

fn usizes(npz: &Npz, name: &str) -> Vec<usize> {
    npz.i64(name).unwrap().into_iter().map(|v| v as usize).collect()
}

fn encode(c: &Case) -> LigandEncoded {
    c.model.encode(&c.features).unwrap()
}

#[test]
fn encode_matches_official_intermediates() {
    let Some(dir) = ligand_dir() else { return };
    let mut r = Report::default();
    for name in cases(&dir) {
        let c = load(&dir, &name);
        let enc = encode(&c);
        let h = c.model.hidden();
        let g = &enc.enc.graph;
        r.exact(&name, "E_idx", &g.e_idx.iter().map(|&v| v as usize).collect::<Vec<_>>(), &usizes(&c.npz, "E_idx"));
        if c.has("E") {
            let (_, e) = c.model.edge_features(&c.features).unwrap();
            r.close(&name, "E", &e, &c.f32s("E"));
        }
        r.close(&name, "h_V_encoder", &enc.h_v_encoder, &c.f32s("h_V_encoder"));
        r.close(&name, "h_V", &enc.enc.h_v, &c.f32s("h_V"));
        if c.has("h_E") {
            r.close(&name, "h_E", &enc.enc.h_e, &c.f32s("h_E"));
        }
        if c.has("V_membrane") {
            r.close(&name, "V_membrane", &c.model.membrane_nodes(&c.features).unwrap(), &c.f32s("V_membrane"));
        }
        match &enc.context {
            Some(ctx) => {
                r.close(&name, "ctx_Y_m", &ctx.atom_mask, &c.f32s("ctx_Y_m"));
                r.close(&name, "h_V_context", &ctx.added, &c.f32s("h_V_context"));
                for (l, layer) in ctx.layers.iter().enumerate() {
                    r.close(&name, &format!("ctx_h_V_C_{l}"), layer, &c.f32s(&format!("ctx_h_V_C_{l}")));
                }
                // context still changes h_V without atoms (use_atom_context 0)
                assert!(enc.enc.h_v != enc.h_v_encoder, "{name}: the context stage added nothing");
                let rows = usizes(&c.npz, "ctx_rows");
                let traces = c.model.context_trace(&c.features, &enc, &rows).unwrap();
                let cat = |f: &dyn Fn(&mpnn::ligand::context::ContextTrace) -> Vec<f32>| {
                    traces.iter().flat_map(f).collect::<Vec<f32>>()
                };
                r.close(&name, "ctx_V", &cat(&|t| t.v.clone()), &c.f32s("ctx_V"));
                r.close(&name, "ctx_Y_nodes", &cat(&|t| t.y_nodes.clone()), &c.f32s("ctx_Y_nodes"));
                for l in 0..ctx.layers.len() {
                    let key = format!("ctx_Y_nodes_{l}");
                    r.close(&name, &key, &cat(&|t| t.y_nodes_layers[l].clone()), &c.f32s(&key));
                }
                if c.has("ctx_Y_edges") {
                    r.close(&name, "ctx_Y_edges", &traces[0].y_edges, &c.f32s("ctx_Y_edges"));
                }
                assert_eq!(traces[0].v.len(), c.model.atom_context_num() * h);
            }
            None => assert!(
                !c.has("h_V_context") && enc.enc.h_v == enc.h_v_encoder,
                "{name}: only ligand_mpnn has an atom context"
            ),
        }
    }
    r.finish("encode");
}

/// The atom-context stage shares the atom-pair work of residues that see the same atoms; how it
/// groups residues (all at once, one by one, small groups, or no sharing at all) changes no bit.
#[test]
fn shared_atom_pair_work_changes_no_bit() {
    let Some(dir) = ligand_dir() else { return };
    let mut checked = 0;
    for name in cases(&dir) {
        let c = load(&dir, &name);
        if c.model.atom_context_num() == 0 {
            continue;
        }
        let outputs = |max_pairs: Option<usize>| {
            let enc = c.model.encode_with_pair_groups(&c.features, max_pairs).unwrap();
            let ctx = enc.context.unwrap();
            let mut all = vec![bits(&enc.enc.h_v), bits(&ctx.added), bits(&ctx.atom_mask)];
            all.extend(ctx.layers.iter().map(|l| bits(l)));
            all
        };
        let plain = outputs(None);
        assert_eq!(bits(&encode(&c).enc.h_v), plain[0], "{name}: encode differs from the plain form");
        for groups in [Some(1), Some(700), Some(usize::MAX)] {
            assert!(outputs(groups) == plain, "{name}: pair groups {groups:?} differ from the plain form");
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} ligand_mpnn cases");
}

/// `single_aa_score(use_sequence)` with positions that are not first in their own order (a few
/// tiny `|randn|` values sort below `1e-4·|randn_i|` of most others): each position's logits
/// are, bit for bit, those of the general conditional pass, which decodes every position in
/// its exact order.
#[test]
fn single_aa_score_recomputes_positions_that_are_not_first() {
    let Some(dir) = ligand_dir() else { return };
    for name in ["ligand_1BC8", "ligand_4oz7_symmetry", "protein_1BC8"] {
        let c = load(&dir, name);
        let enc = encode(&c);
        let l = c.features.len();
        let mut randn = c.randn.clone();
        randn[1] = 3e-6;
        randn[l / 2] = -1e-6;
        let got = c.model.single_aa_score(&enc, &c.features, &randn, true);
        let want = c.model.protein.conditional_logits(&enc.enc, &c.features.s, &vec![1.0; l], &randn, true);
        let irregular = (0..l).filter(|&i| single_aa_order(i, &randn, true)[0] != i).count();
        assert!(irregular > l / 2, "{name}: only {irregular} of {l} positions are not first");
        assert!(bits(&got.logits) == bits(&want), "{name}: logits differ from the conditional pass");
    }
}

#[test]
fn score_and_single_aa_score_match_official() {
    let Some(dir) = ligand_dir() else { return };
    let mut r = Report::default();
    for name in cases(&dir) {
        let c = load(&dir, &name);
        let enc = encode(&c);
        let (groups, _) = c.symmetry();
        let l = c.features.len();
        for (key, use_sequence) in [("seq", true), ("bb", false)] {
            let s = c.model.score(&enc, &c.features, &c.randn, &groups, use_sequence).unwrap();
            r.close(&name, &format!("score_{key}_log_probs"), &s.log_probs, &c.f32s(&format!("score_{key}_log_probs")));
            r.exact(
                &name,
                &format!("score_{key}_decoding_order"),
                &s.decoding_order,
                &usizes(&c.npz, &format!("score_{key}_decoding_order")),
            );
            let a = c.model.single_aa_score(&enc, &c.features, &c.randn, use_sequence);
            r.close(
                &name,
                &format!("single_aa_{key}_log_probs"),
                &a.log_probs,
                &c.f32s(&format!("single_aa_{key}_log_probs")),
            );
            let order_key = format!("single_aa_{key}_decoding_order");
            if c.has(&order_key) {
                let orders: Vec<usize> = (0..l).flat_map(|i| single_aa_order(i, &c.randn, use_sequence)).collect();
                r.exact(&name, &order_key, &orders, &usizes(&c.npz, &order_key));
            }
        }
    }
    r.finish("score / single_aa_score");
}

#[test]
fn argmax_and_forced_sampling_match_official() {
    let Some(dir) = ligand_dir() else { return };
    let mut r = Report::default();
    for name in cases(&dir) {
        let c = load(&dir, &name);
        let enc = encode(&c);
        let opts = c.options();
        let forced: Vec<u8> = c.npz.i64("forced_seq").unwrap().into_iter().map(|v| v as u8).collect();
        for key in ["argmax", "forced"] {
            let sample = if key == "argmax" {
                c.model.sample(&enc, &c.features, &c.randn, &opts, &mut Argmax)
            } else {
                c.model.sample(&enc, &c.features, &c.randn, &opts, &mut Forced(&forced))
            }
            .unwrap();
            let k = |s: &str| format!("{key}_{s}");
            let s_want: Vec<u8> = c.npz.i64(&k("S")).unwrap().into_iter().map(|v| v as u8).collect();
            r.exact(&name, &k("S"), &sample.s, &s_want);
            r.exact(&name, &k("decoding_order"), &sample.decoding_order, &usizes(&c.npz, &k("decoding_order")));
            r.close(&name, &k("sampling_probs"), &sample.sampling_probs, &c.f32s(&k("sampling_probs")));
            r.close(&name, &k("log_probs"), &sample.log_probs, &c.f32s(&k("log_probs")));
            let steps: Vec<f32> = sample.step_probs.iter().flatten().copied().collect();
            r.close(&name, &k("step_probs"), &steps, &c.f32s(&k("step_probs")));
            let conf = &sample.confidence;
            r.close(&name, &k("overall_confidence"), &[conf.overall_confidence], &c.f32s(&k("overall_confidence")));
            r.close(&name, &k("ligand_confidence"), &[conf.ligand_confidence], &c.f32s(&k("ligand_confidence")));
            r.close(&name, &k("seq_rec"), &[conf.seq_rec], &c.f32s(&k("seq_rec")));
            r.close(&name, &k("loss_per_residue"), &conf.loss_per_residue, &c.f32s(&k("loss_per_residue")));
            // the FASTA line's 4-digit numbers
            if let Some(fasta) = c.json[format!("{key}_fasta")].as_object() {
                for (field, v) in [
                    ("overall_confidence", conf.overall_confidence),
                    ("ligand_confidence", conf.ligand_confidence),
                    ("seq_rec", conf.seq_rec),
                ] {
                    let want: f32 = fasta[field].as_str().unwrap().parse().unwrap();
                    // printed with 4 decimals
                    r.checks += 1;
                    if (v - want).abs() > 5e-5 + 1e-6 {
                        r.failures.push(format!("{name}: {key} FASTA {field}: {v} vs printed {want}"));
                    }
                }
            }
            assert_eq!(sample.step_probs[0].len(), DRAWN);
        }
        eprintln!("{}: sampled", c.name);
    }
    r.finish("sampling");
}

#[test]
fn seeded_sampling_is_reproducible_and_respects_fixed_positions() {
    let Some(dir) = ligand_dir() else { return };
    let c = load(&dir, "ligand_4oz7_symmetry");
    let enc = encode(&c);
    let l = c.features.len();
    let opts = c.options();
    let run = |index: u64| {
        let randn = seeded_randn(7, &c.name, index, l);
        c.model.sample(&enc, &c.features, &randn, &opts, &mut seeded_chooser(7, &c.name, index)).unwrap()
    };
    let (a, b, other) = (run(0), run(0), run(1));
    assert_eq!(a, b, "same seed, same sample");
    // one sampler shared by parallel samples gives the same sequences
    let sampler = c.model.sampler(&enc, &c.features);
    use rayon::prelude::*;
    let parallel: Vec<_> = (0..4u64)
        .into_par_iter()
        .map(|i| {
            let randn = seeded_randn(7, &c.name, i, l);
            sampler.sample(&randn, &opts, &mut seeded_chooser(7, &c.name, i)).unwrap()
        })
        .collect();
    assert_eq!(parallel[0], a);
    assert_eq!(parallel[1], other);
    assert_ne!(
        (a.s.clone(), a.decoding_order.clone()),
        (other.s, other.decoding_order),
        "another index, another sample"
    );
    for (t, &cm) in c.features.chain_mask.iter().enumerate() {
        if cm == 0.0 {
            assert_eq!(a.s[t], c.features.s[t], "fixed position {t} keeps its native letter");
        }
    }
    // symmetry groups share a letter unless a member is fixed
    for g in &opts.symmetry_residues {
        if g.iter().all(|&t| c.features.chain_mask[t] == 1.0) {
            assert!(g.iter().all(|&t| a.s[t] == a.s[g[0]]), "group {g:?}: {:?}", a.s);
        }
    }
}

#[test]
fn checkpoints_load_as_their_types_only() {
    let Some(dir) = ligand_dir() else { return };
    let w = dir.join("weights");
    let expect = [
        ("ligand_k32_a25.pt", ModelType::LigandMpnn, 128, 3, 3, 32, 25),
        ("ligand_h64_l2_k16_a16.pt", ModelType::LigandMpnn, 64, 2, 2, 16, 16),
        ("protein_k48.pt", ModelType::ProteinMpnn, 32, 3, 3, 48, 0),
        ("soluble_k48.pt", ModelType::SolubleMpnn, 32, 3, 3, 48, 0),
        ("membrane_residue_k48.pt", ModelType::PerResidueLabelMembraneMpnn, 32, 3, 3, 48, 0),
        ("membrane_global_k48.pt", ModelType::GlobalLabelMembraneMpnn, 32, 3, 3, 48, 0),
        ("../../weights/full_k48.pt", ModelType::ProteinMpnn, 128, 3, 3, 48, 0),
    ];
    for (file, t, hidden, enc_layers, dec_layers, k, m) in expect {
        let ckpt = checkpoint::load(&w.join(file)).unwrap();
        let model = LigandMpnn::from_checkpoint(&ckpt, t).unwrap_or_else(|e| panic!("{file} as {t}: {e}"));
        let a = model.arch;
        assert_eq!(
            (a.base.hidden, a.base.encoder_layers, a.base.decoder_layers, a.base.k, a.atom_context_num),
            (hidden, enc_layers, dec_layers, k, m),
            "{file}"
        );
        assert_eq!(model.model_type(), t);
        // every other type is refused, except the indistinguishable protein / soluble pair and
        // the two membrane models
        for other in ModelType::ALL {
            let same_layout = other == t
                || matches!(
                    (t, other),
                    (ModelType::ProteinMpnn, ModelType::SolubleMpnn) | (ModelType::SolubleMpnn, ModelType::ProteinMpnn)
                )
                || (t.is_membrane() && other.is_membrane());
            let res = LigandMpnn::from_checkpoint(&ckpt, other);
            if same_layout {
                assert!(res.is_ok(), "{file} as {other}");
            } else {
                match res {
                    Err(LigandModelError::WrongType { expected, problem, .. }) => {
                        assert_eq!(expected, other);
                        assert!(problem.contains("look like"), "{file} as {other}: {problem}");
                    }
                    Err(e) => panic!("{file} as {other}: expected a wrong-type error, got {e}"),
                    Ok(_) => panic!("{file} loaded as {other}"),
                }
            }
        }
    }
    // a ligand checkpoint converted to safetensors keeps atom_context_num and loads the same
    let ckpt = checkpoint::load(&w.join("ligand_h64_l2_k16_a16.pt")).unwrap();
    let bytes = checkpoint::to_safetensors_bytes(&ckpt).unwrap();
    let back = checkpoint::load_bytes(&bytes, "converted").unwrap();
    assert_eq!(back.atom_context_num, Some(16));
    assert_eq!(
        LigandMpnn::from_checkpoint(&back, ModelType::LigandMpnn).unwrap().arch,
        LigandMpnn::from_checkpoint(&ckpt, ModelType::LigandMpnn).unwrap().arch
    );
    // model type names round-trip and unknown ones are refused with the list
    for t in ModelType::ALL {
        assert_eq!(t.to_string().parse::<ModelType>().unwrap(), t);
    }
    let err = "ligandmpnn".parse::<ModelType>().unwrap_err();
    assert!(err.contains("ligand_mpnn") && err.contains("global_label_membrane_mpnn"), "{err}");
    // a ligand checkpoint missing one context tensor is a layout error naming it
    let mut ckpt = checkpoint::load(&w.join("ligand_k32_a25.pt")).unwrap();
    ckpt.tensors.remove("context_encoder_layers.1.W2.bias");
    let err = LigandMpnn::from_checkpoint(&ckpt, ModelType::LigandMpnn).unwrap_err().to_string();
    assert!(err.contains("context_encoder_layers.1.W2.bias"), "{err}");
    let mut ckpt = checkpoint::load(&w.join("ligand_k32_a25.pt")).unwrap();
    ckpt.atom_context_num = None;
    let err = LigandMpnn::from_checkpoint(&ckpt, ModelType::LigandMpnn).unwrap_err().to_string();
    assert!(err.contains("atom_context_num"), "{err}");
}

#[test]
fn features_that_do_not_fit_the_model_are_refused() {
    let Some(dir) = ligand_dir() else { return };
    let c = load(&dir, "pruned_1BC8");
    // the pruned model reads 16 atoms per residue; features for 25 do not fit
    let wide = load(&dir, "ligand_1BC8");
    let err = c.model.encode(&wide.features).unwrap_err().to_string();
    assert!(err.contains("atom_context_num = 16"), "{err}");
    let membrane = load(&dir, "membrane_residue_1BC8");
    let mut f = membrane.features.clone();
    f.membrane_labels = None;
    assert!(membrane.model.encode(&f).is_err());
    let mut f = c.features.clone();
    f.y_t[3] = 119;
    assert!(c.model.encode(&f).unwrap_err().to_string().contains("119"));
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The atom-context stage runs on the same kernels as the rest of the network: every
/// instruction-set path this CPU has (`MPNN_ISA`, here forced in-process) gives the same bits
/// for the encoder, the context, scoring and sampling. Only this test switches the path; the
/// others compare with the official numbers at 1e-4, which every path meets.
#[test]
fn ligand_network_is_identical_on_every_path() {
    use mpnn::kernels::isa::{self, Isa};
    let Some(dir) = ligand_dir() else { return };
    for p in Isa::ALL {
        if let Some(msg) = isa::skip_message(p) {
            eprintln!("{msg}");
        }
    }
    let paths = Isa::available();
    let home = isa::active();
    for name in ["ligand_4oz7_symmetry", "ligand_1BC8_side_chains", "membrane_residue_1BC8"] {
        let c = load(&dir, name);
        let opts = c.options();
        let (groups, _) = c.symmetry();
        let mut first: Option<(Isa, Vec<Vec<u32>>)> = None;
        for &p in &paths {
            isa::force(p).unwrap();
            let enc = encode(&c);
            let added = enc.context.as_ref().map(|x| x.added.clone()).unwrap_or_default();
            let score = c.model.score(&enc, &c.features, &c.randn, &groups, true).unwrap();
            let single = c.model.single_aa_score(&enc, &c.features, &c.randn, false);
            let sample = c.model.sample(&enc, &c.features, &c.randn, &opts, &mut Argmax).unwrap();
            let d = common::max_abs_diff(&score.log_probs, &c.f32s("score_seq_log_probs"));
            assert!(d < TOL, "{name} on {p}: score differs from the official by {d}");
            let got = vec![
                bits(&enc.enc.h_v),
                bits(&enc.enc.h_e),
                bits(&added),
                bits(&score.log_probs),
                bits(&single.log_probs),
                bits(&sample.log_probs),
            ];
            match &first {
                None => first = Some((p, got)),
                Some((q, want)) => {
                    for (i, what) in ["h_V", "h_E", "context", "score", "single_aa_score", "sample"].iter().enumerate()
                    {
                        assert!(got[i] == want[i], "{name}: {what} on {p} differs from {q}");
                    }
                }
            }
        }
        eprintln!("{name}: identical on {:?}", paths.iter().map(|p| p.name()).collect::<Vec<_>>());
    }
    isa::force(home).unwrap();
}
