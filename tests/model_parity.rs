//! End-to-end parity against the official implementation: structure file → featurization →
//! features, encoder, decoder, scores, unconditional and conditional probabilities, loading the
//! fixture checkpoints with mpnn's own `.pt` reader.

mod common;

use common::*;
use mpnn::featurize::{Batch, Features};
use mpnn::model::decoder::{decoding_order, score};

fn batch_of(f: &Features) -> (Batch, Vec<u8>) {
    (Batch::new(&[f], None), f.s.clone())
}

/// Parsing + featurization reproduce every array of the official `tied_featurize`, from the
/// `.pdb` and from its `.cif` twin.
#[test]
fn featurization_matches_official() {
    let Some(dir) = parity_dir() else { return };
    for name in cases(&dir) {
        let case = load_case(&dir, &name);
        let n = &case.npz;
        for ext in ["pdb", "cif"] {
            let Some(f) = case.features(ext) else { continue };
            let what = format!("{name} ({ext})");
            assert_eq!(f.x, n.f32("X").unwrap(), "{what}: X");
            assert_eq!(f.s.iter().map(|&v| v as i64).collect::<Vec<_>>(), n.i64("S").unwrap(), "{what}: S");
            assert_eq!(f.mask, n.f32("mask").unwrap(), "{what}: mask");
            assert_eq!(f.chain_m, n.f32("chain_M").unwrap(), "{what}: chain_M");
            assert_eq!(f.chain_m_pos, n.f32("chain_M_pos").unwrap(), "{what}: chain_M_pos");
            assert_eq!(f.chain_encoding, n.i64("chain_encoding_all").unwrap(), "{what}: chain_encoding_all");
            assert_eq!(f.residue_idx, n.i64("residue_idx").unwrap(), "{what}: residue_idx");
            assert_eq!(f.omit_aa_mask, n.f32("omit_AA_mask").unwrap(), "{what}: omit_AA_mask");
            assert_eq!(f.pssm_coef, n.f32("pssm_coef").unwrap(), "{what}: pssm_coef");
            assert_eq!(f.pssm_bias, n.f32("pssm_bias").unwrap(), "{what}: pssm_bias");
            let threshold = case.json["pssm_threshold"].as_f64().unwrap() as f32;
            let lo_mask: Vec<f32> = f.pssm_log_odds.iter().map(|&v| if v > threshold { 1.0 } else { 0.0 }).collect();
            assert_eq!(lo_mask, n.f32("pssm_log_odds_mask").unwrap(), "{what}: pssm_log_odds_mask");
            assert_eq!(f.bias_by_res, n.f32("bias_by_res").unwrap(), "{what}: bias_by_res");
            assert_eq!(f.tied_beta, n.f32("tied_beta").unwrap(), "{what}: tied_beta");
            let groups: Vec<Vec<usize>> = serde_json::from_value(case.json["tied_groups"].clone()).unwrap();
            assert_eq!(f.tied_positions, groups, "{what}: tied groups");
            let order: Vec<String> = serde_json::from_value(case.json["chain_order"].clone()).unwrap();
            assert_eq!(f.chain_order, order, "{what}: chain order");
        }
    }
}

#[test]
fn network_matches_official_tensors() {
    let Some(dir) = parity_dir() else { return };
    for name in cases(&dir) {
        let case = load_case(&dir, &name);
        let model = case.model();
        let f = case.features("pdb").unwrap();
        let (batch, s) = batch_of(&f);
        let n = &case.npz;
        let mask = &batch.mask;
        let (graph, e) = model.edge_features(&batch);
        let e_idx: Vec<i64> = graph.e_idx.iter().map(|&v| v as i64).collect();
        let want_idx = n.i64("E_idx").unwrap();
        let k = graph.k;
        let h = model.hidden();
        let mut idx_mismatch = 0;
        for i in 0..batch.l {
            if mask[i] == 1.0 && e_idx[i * k..(i + 1) * k] != want_idx[i * k..(i + 1) * k] {
                idx_mismatch += 1;
            }
        }
        assert_eq!(idx_mismatch, 0, "{name}: E_idx rows differ");
        if n.has("E") {
            let want = n.f32("E").unwrap();
            let mut worst = 0f32;
            for i in 0..batch.l {
                if mask[i] == 1.0 {
                    worst = worst.max(max_abs_diff(&e[i * k * h..(i + 1) * k * h], &want[i * k * h..(i + 1) * k * h]));
                }
            }
            eprintln!("{name}: E diff {worst}");
            assert!(worst < 1e-4, "{name}: E differs by {worst}");
        }
        let enc = model.encode_edges(&batch, graph, &e);
        let want_hv = n.f32("h_V_enc").unwrap();
        let d = max_abs_diff(&enc.h_v, &want_hv);
        eprintln!("{name}: h_V_enc {d}");
        assert!(d < 1e-4, "{name}: h_V_enc differs by {d}");
        if n.has("h_E_enc") {
            let want = n.f32("h_E_enc").unwrap();
            let mut worst = 0f32;
            for i in 0..batch.l {
                if mask[i] == 1.0 {
                    worst = worst
                        .max(max_abs_diff(&enc.h_e[i * k * h..(i + 1) * k * h], &want[i * k * h..(i + 1) * k * h]));
                }
            }
            eprintln!("{name}: h_E diff {worst}");
            // CA-only edges carry quaternions of local frames (square roots of values near 0),
            // where float32 rounding differences of ~1e-7 grow to ~1e-4 in a few edges (E itself
            // stays within 1e-4; measured 1.03e-4 on ca_5L33 after the encoder). Full-backbone
            // cases meet 1e-4 with ~20× margin.
            let tol = if case.ca_only() { 2e-4 } else { 1e-4 };
            assert!(worst < tol, "{name}: h_E_enc differs by {worst} (tolerance {tol})");
        }
        // decoding order from randn
        let randn = n.f32("randn").unwrap();
        let design: Vec<f32> = n
            .f32("chain_M")
            .unwrap()
            .iter()
            .zip(n.f32("chain_M_pos").unwrap())
            .zip(mask)
            .map(|((a, b), c)| a * b * c)
            .collect();
        let order = decoding_order(&design, &randn);
        let want_order: Vec<usize> = n.i64("decoding_order").unwrap().iter().map(|&v| v as usize).collect();
        assert_eq!(order, want_order, "{name}: decoding order");
        let lp = model.forward(&enc, &s, &order);
        let d = max_abs_diff(&lp, &n.f32("log_probs").unwrap());
        assert!(d < 1e-4, "{name}: log_probs differ by {d}");
        let sc = score(&lp, &s, &design);
        let gs = score(&lp, &s, mask);
        assert!((sc - n.f32("score").unwrap()[0]).abs() < 1e-4, "{name}: score {sc}");
        assert!((gs - n.f32("global_score").unwrap()[0]).abs() < 1e-4, "{name}: global score {gs}");
        let un = model.unconditional(&enc);
        let d = max_abs_diff(&un, &n.f32("unconditional_log_probs").unwrap());
        eprintln!("{name}: unconditional {d}");
        assert!(d < 1e-4, "{name}: unconditional differs by {d}");
        let cond_mask = design.clone();
        let cb = model.conditional(&enc, &s, &cond_mask, &randn, true);
        let d = max_abs_diff(&cb, &n.f32("conditional_backbone_log_probs").unwrap());
        eprintln!("{name}: conditional backbone {d}");
        assert!(d < 1e-4, "{name}: conditional backbone differs by {d}");
        let cs = model.conditional(&enc, &s, &cond_mask, &randn, false);
        let d = max_abs_diff(&cs, &n.f32("conditional_log_probs").unwrap());
        eprintln!("{name}: conditional {d}");
        assert!(d < 1e-4, "{name}: conditional differs by {d}");
        eprintln!("{name}: ok");
    }
}

/// The fast path equals the plain reference path (concatenated inputs, naive kernels) on a
/// monomer, a complex with a fixed chain, the CA-only and the small model.
#[test]
fn fast_path_matches_reference_path() {
    let Some(dir) = parity_dir() else { return };
    for name in ["monomer_5L33", "ca_5L33", "small_6EHB", "quirks_edge"] {
        let case = load_case(&dir, name);
        let model = case.model();
        let f = case.features("pdb").unwrap();
        let batch = Batch::new(&[&f], None);
        let fast = model.encode(&batch);
        let slow = model.encode_reference(&batch);
        let d = max_abs_diff(&fast.h_v, &slow.h_v);
        assert!(d < 1e-4, "{name}: h_V fast vs reference {d}");
        let randn = case.npz.f32("randn").unwrap();
        let order = decoding_order(&f.design_mask(), &randn);
        let a = model.forward(&fast, &f.s, &order);
        let b = model.forward_reference(&slow, &f.s, &order);
        let d = max_abs_diff(&a, &b);
        assert!(d < 1e-4, "{name}: log-probs fast vs reference {d}");
    }
}
