//! Parity of the network against the official implementation's intermediate tensors, fed the
//! fixture's own featurized arrays (so this checks the model alone; parsing has its own test).

mod common;

use common::*;
use mpnn::checkpoint::{Architecture, Checkpoint, Tensor};
use mpnn::featurize::Batch;
use mpnn::model::decoder::{decoding_order, score};
use mpnn::model::ProteinMpnn;

fn dev_checkpoint(path: &str) -> Checkpoint {
    let npz = mpnn::npz::Npz::read(path).unwrap();
    let tensors =
        npz.arrays.iter().map(|(k, a)| (k.clone(), Tensor { shape: a.shape.clone(), data: a.to_f32() })).collect();
    Checkpoint { source: path.into(), num_edges: 0, noise_level: 0.2, tensors }
}

fn model_for(case: &Case) -> ProteinMpnn {
    let ck = case.json["checkpoint"].as_str().unwrap();
    let (path, arch) = match ck {
        "weights/full_k48.pt" => ("/tmp/dev/full.npz", (128, 3, 48, false)),
        "weights/ca_k48.pt" => ("/tmp/dev/ca.npz", (128, 3, 48, true)),
        _ => ("/tmp/dev/small.npz", (64, 2, 16, false)),
    };
    let ckpt = dev_checkpoint(path);
    let arch = Architecture {
        hidden: arch.0,
        encoder_layers: arch.1,
        decoder_layers: arch.1,
        k: arch.2,
        ca_only: arch.3,
        vocab: 21,
    };
    ProteinMpnn::new(&ckpt, arch).unwrap()
}

fn batch_of(case: &Case) -> (Batch, Vec<u8>) {
    let n = &case.npz;
    let l = n.shape("S").unwrap()[1];
    let ca_only = case.json["ca_only"].as_bool().unwrap();
    let batch = Batch {
        b: 1,
        l,
        ca_only,
        x: n.f32("X").unwrap(),
        mask: n.f32("mask").unwrap(),
        residue_idx: n.i64("residue_idx").unwrap(),
        chain_encoding: n.i64("chain_encoding_all").unwrap(),
        lengths: vec![l],
    };
    let s = n.i64("S").unwrap().iter().map(|&v| v as u8).collect();
    (batch, s)
}

#[test]
fn network_matches_official_tensors() {
    let Some(dir) = parity_dir() else { return };
    for name in cases(&dir) {
        let case = load_case(&dir, &name);
        let model = model_for(&case);
        let (batch, s) = batch_of(&case);
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
            assert!(worst < 2e-4, "{name}: h_E_enc differs by {worst}");
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
