//! A 10,000-residue synthetic complex scores within 4 GB: no L×L arrays anywhere (the k-NN
//! graph comes from a cell list, edges are processed in chunks).

mod common;

use common::*;
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints};
use mpnn::model::decoder::{decoding_order, score};

#[test]
fn ten_thousand_residues_score_in_under_4_gb() {
    let Some(dir) = parity_dir() else { return };
    let ckpt = mpnn::checkpoint::load(&dir.join("weights/full_k48.pt")).unwrap();
    let model = mpnn::model::ProteinMpnn::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
    let p = mpnn::bench::synthetic_backbone("complex_10k", 10_000, 500);
    assert_eq!(p.chains.len(), 20);
    let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
    let enc = model.encode(&Batch::new(&[&f], None));
    let randn = mpnn::rng::randn(&mut mpnn::rng::stream(1, "complex_10k", mpnn::rng::Purpose::ScoreOrder, 0), f.len());
    let lp = model.forward(&enc, &f.s, &decoding_order(&f.design_mask(), &randn));
    let s = score(&lp, &f.s, &f.design_mask());
    assert!(s.is_finite() && s > 0.0, "score {s}");
    let peak = mpnn::bench::peak_rss_mib();
    eprintln!("10,000 residues: score {s:.4}, peak RSS {peak:.0} MiB");
    assert!(peak < 4096.0, "peak RSS {peak:.0} MiB");
}
