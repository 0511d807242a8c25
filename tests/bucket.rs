//! Length buckets and structure batching: padded, batched runs give every structure exactly the
//! numbers (bit for bit) and the output files (byte for byte) of one-structure runs, for any
//! bucket spec, batch size and padding, including structures shorter than the model's k.

mod common;

use std::path::Path;

use common::*;
use mpnn::bucket::{Buckets, Padding, Router};
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints, Features};
use mpnn::pipeline::{BatchError, Engine, Pass, Scored, Workspace};
use mpnn::rng::{self, Purpose};
use mpnn::structure::{Chain, Protein};

fn engine(dir: &Path, weights: &str) -> Engine {
    let ckpt = mpnn::checkpoint::load(&dir.join("weights").join(weights)).unwrap();
    let arch = ckpt.architecture().unwrap();
    Engine::new(&ckpt, arch).unwrap()
}

/// The first `n` residues of a structure's first chain, under a new name.
fn truncated(p: &Protein, n: usize, name: &str) -> Protein {
    let c = &p.chains[0];
    let chain =
        Chain { id: c.id.clone(), sequence: c.sequence.chars().take(n).collect(), coords: c.coords[..n].to_vec() };
    Protein { name: name.to_string(), chains: vec![chain] }
}

/// The parity structures plus short ones around k = 48: two different 30-residue structures
/// (they may batch together), 40, 47 (k - 1) and 48 (k) residues.
fn proteins(dir: &Path) -> Vec<Protein> {
    let read = |f: &str| mpnn::structure::read_structure(&dir.join("structures").join(f)).unwrap();
    let (l33, mrr) = (read("5L33.pdb"), read("6MRR.pdb"));
    vec![
        l33.clone(),
        mrr.clone(),
        read("3HTN.pdb"),
        read("4YOW.pdb"),
        read("quirks.pdb"),
        truncated(&l33, 30, "5L33_first30"),
        mpnn::bench::synthetic_backbone("synthetic_30", 30, 500),
        truncated(&mrr, 40, "6MRR_first40"),
        mpnn::bench::synthetic_backbone("synthetic_47", 47, 500),
        mpnn::bench::synthetic_backbone("synthetic_48", 48, 500),
        mpnn::bench::synthetic_backbone("synthetic_60", 60, 30),
    ]
}

fn features(proteins: &[Protein], ca_only: bool) -> Vec<Features> {
    proteins.iter().map(|p| featurize(p, &ChainSelection::all(p), &Constraints::default(), ca_only).unwrap()).collect()
}

/// Passes per structure: the native sequence and a mutant, one more pass for every third
/// structure from the second on (uneven pass counts within a batch).
fn passes(feats: &[Features]) -> Vec<Vec<Pass>> {
    feats
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mutant: Vec<u8> =
                f.s.iter().enumerate().map(|(j, &a)| if j % 5 == 0 { (a + 3) % 20 } else { a }).collect();
            let randn = |p: u64| rng::randn(&mut rng::stream(5, &f.name, Purpose::ScoreOrder, p), f.len());
            let mut v = vec![(f.s.clone(), randn(0)), (mutant, randn(1))];
            if i % 3 == 1 {
                v.push((f.s.clone(), randn(2)));
            }
            v
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same_scored(a: &[Scored], b: &[Scored]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0.score.to_bits() == y.0.score.to_bits()
                && x.0.global_score.to_bits() == y.0.global_score.to_bits()
                && bits(&x.1) == bits(&y.1)
        })
}

fn router(spec: &str, lengths: &[usize], batch: usize, k: usize, padding: Padding) -> Router {
    let spec: Buckets = spec.parse().unwrap();
    Router::new(spec.resolve(lengths), batch).unwrap().exact_below(k).padding(padding)
}

/// Bucket specs, batch sizes and paddings every comparison runs through.
const CONFIGS: [(&str, usize, Padding); 5] = [
    ("64,128,256,512,1024", 8, Padding::Longest),
    ("64,128,256,512,1024", 2, Padding::Bound),
    ("quantiles:3", 16, Padding::Longest),
    ("100,200", 4, Padding::Bound),
    ("quantiles:1", 3, Padding::Longest),
];

/// Scores of every structure under `configs`, compared with one-structure runs.
fn check_scores(engine: &Engine, feats: &[Features], configs: &[(&str, usize, Padding)]) {
    let passes = passes(feats);
    let single: Vec<Vec<Scored>> = feats.iter().zip(&passes).map(|(f, p)| engine.score(f, p)).collect();
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    for &(spec, batch, padding) in configs {
        let r = router(spec, &lengths, batch, engine.arch().k, padding);
        let groups = r.route(&lengths);
        let mut padded = false;
        let mut ws = Workspace::new();
        for g in &groups {
            let items: Vec<(&Features, &[Pass])> = g.members.iter().map(|&i| (&feats[i], &passes[i][..])).collect();
            let got = engine.score_many(&items, Some(g.pad_to), &mut ws).unwrap();
            for (&i, res) in g.members.iter().zip(&got) {
                padded |= lengths[i] < g.pad_to;
                assert!(same_scored(res, &single[i]), "{spec} batch {batch} {padding:?}: {} differs", feats[i].name);
            }
        }
        assert!(padded, "{spec} batch {batch}: some structure must actually be padded");
        assert!(groups.iter().any(|g| g.members.len() > 1), "{spec} batch {batch}: some batch must hold several");
    }
}

#[test]
fn batched_scores_equal_one_structure_scores() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "full_k48.pt");
    check_scores(&engine, &features(&proteins(&dir), false), &[CONFIGS[0], CONFIGS[4]]);
}

/// Every bucket spec, batch size and padding, with the k = 16 model (fast), whose short
/// structures are those under 16 residues.
#[test]
fn batched_scores_equal_one_structure_scores_for_every_config() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "small_h64_l2_k16.pt");
    let mut all = proteins(&dir);
    all.push(truncated(&all[0], 12, "5L33_first12"));
    all.push(truncated(&all[1], 12, "6MRR_first12"));
    all.push(mpnn::bench::synthetic_backbone("synthetic_15", 15, 500));
    check_scores(&engine, &features(&all, false), &CONFIGS);
}

#[test]
fn short_structures_batch_only_with_their_own_length() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "full_k48.pt");
    let feats = features(&proteins(&dir), false);
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let groups = router("quantiles:1", &lengths, 16, 48, Padding::Longest).route(&lengths);
    let names = |g: &mpnn::bucket::Group| g.members.iter().map(|&i| feats[i].name.clone()).collect::<Vec<_>>();
    let thirty = groups.iter().find(|g| g.pad_to == 30).expect("a 30-residue group");
    assert_eq!(names(thirty), ["5L33_first30", "synthetic_30"]);
    let padded = groups.iter().find(|g| g.members.len() > 2).unwrap();
    assert!(names(padded).contains(&"synthetic_48".to_string()), "k residues may be padded: {:?}", names(padded));
    assert!(!names(padded).contains(&"synthetic_47".to_string()));

    // Why: padding a structure shorter than k puts padded positions into its neighbour lists.
    let short = feats.iter().find(|f| f.name == "synthetic_30").unwrap();
    let m = &engine.model;
    let alone = m.unconditional(&m.encode(&Batch::new(&[short], None)));
    let padded = m.unconditional(&m.encode(&Batch::new(&[short], Some(40))));
    assert_ne!(bits(&alone), bits(&padded[..alone.len()]), "padding below k changes results (the router's reason)");
    let err = engine.unconditional_many(&[short], Some(40), &mut Workspace::new()).unwrap_err();
    assert!(matches!(err, BatchError::ShortPadded { len: 30, k: 48, pad_to: 40, .. }), "{err:?}");
    assert!(err.to_string().contains("synthetic_30 has 30 residues, fewer than the model's k = 48"), "{err}");
    // but k residues and more pad freely
    let k48 = feats.iter().find(|f| f.name == "synthetic_48").unwrap();
    let alone = engine.unconditional(k48);
    let padded = engine.unconditional_many(&[k48], Some(200), &mut Workspace::new()).unwrap();
    assert_eq!(bits(&alone), bits(&padded[0]));
}

#[test]
fn batched_probabilities_equal_one_structure_probabilities() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "full_k48.pt");
    let feats = features(&proteins(&dir), false);
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let single: Vec<Vec<f32>> = feats.iter().map(|f| engine.unconditional(f)).collect();
    for (spec, batch, padding) in [CONFIGS[0], CONFIGS[2], CONFIGS[4]] {
        let mut ws = Workspace::new();
        for g in router(spec, &lengths, batch, 48, padding).route(&lengths) {
            let items: Vec<&Features> = g.members.iter().map(|&i| &feats[i]).collect();
            let got = engine.unconditional_many(&items, Some(g.pad_to), &mut ws).unwrap();
            for (&i, lp) in g.members.iter().zip(&got) {
                assert_eq!(bits(lp), bits(&single[i]), "{spec} batch {batch}: {}", feats[i].name);
            }
        }
    }
}

/// Conditional probabilities (per-position cones over the decoding order), both kinds, with
/// the full model on the short and small structures and with the k = 16 model on the rest.
#[test]
fn batched_conditional_probabilities_equal_one_structure_ones() {
    let Some(dir) = parity_dir() else { return };
    let all = proteins(&dir);
    for (weights, names, configs) in [
        ("full_k48.pt", &["6MRR", "5L33_first30", "synthetic_30", "synthetic_47", "synthetic_48"][..], &CONFIGS[4..]),
        ("small_h64_l2_k16.pt", &["5L33", "6MRR", "quirks", "synthetic_30", "6MRR_first40"][..], &CONFIGS[..1]),
    ] {
        let engine = engine(&dir, weights);
        let chosen: Vec<Protein> = all.iter().filter(|p| names.contains(&p.name.as_str())).cloned().collect();
        let mut extra = Vec::new();
        if weights.starts_with("small") {
            // shorter than this model's k = 16
            extra.push(truncated(&chosen[0], 12, "first12_a"));
            extra.push(truncated(&chosen[1], 12, "first12_b"));
        }
        let feats = features(&[chosen, extra].concat(), false);
        let passes = passes(&feats);
        let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
        for backbone_only in [false, true] {
            let single: Vec<Vec<Vec<f32>>> = feats
                .iter()
                .zip(&passes)
                .map(|(f, ps)| ps.iter().map(|(s, r)| engine.conditional(f, s, r, backbone_only)).collect())
                .collect();
            for &(spec, batch, padding) in configs {
                let mut ws = Workspace::new();
                let groups = router(spec, &lengths, batch, engine.arch().k, padding).route(&lengths);
                assert!(groups.iter().any(|g| g.members.len() > 1));
                for g in groups {
                    let items: Vec<(&Features, &[Pass])> =
                        g.members.iter().map(|&i| (&feats[i], &passes[i][..])).collect();
                    let got = engine.conditional_many(&items, backbone_only, Some(g.pad_to), &mut ws).unwrap();
                    for (&i, per_pass) in g.members.iter().zip(&got) {
                        assert_eq!(per_pass.len(), single[i].len());
                        for (a, b) in per_pass.iter().zip(&single[i]) {
                            assert_eq!(
                                bits(a),
                                bits(b),
                                "{weights} {spec} backbone_only={backbone_only}: {}",
                                feats[i].name
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn ca_only_batches_equal_one_structure_runs() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "ca_k48.pt");
    let all = proteins(&dir);
    let keep = ["5L33", "6MRR", "quirks", "5L33_first30", "synthetic_30", "synthetic_48", "synthetic_60"];
    let chosen: Vec<Protein> = all.into_iter().filter(|p| keep.contains(&p.name.as_str())).collect();
    let feats = features(&chosen, true);
    let passes = passes(&feats);
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let single: Vec<Vec<Scored>> = feats.iter().zip(&passes).map(|(f, p)| engine.score(f, p)).collect();
    let single_u: Vec<Vec<f32>> = feats.iter().map(|f| engine.unconditional(f)).collect();
    for (spec, batch, padding) in [CONFIGS[1], CONFIGS[4]] {
        let mut ws = Workspace::new();
        for g in router(spec, &lengths, batch, 48, padding).route(&lengths) {
            let items: Vec<(&Features, &[Pass])> = g.members.iter().map(|&i| (&feats[i], &passes[i][..])).collect();
            let got = engine.score_many(&items, Some(g.pad_to), &mut ws).unwrap();
            let fs: Vec<&Features> = g.members.iter().map(|&i| &feats[i]).collect();
            let got_u = engine.unconditional_many(&fs, Some(g.pad_to), &mut ws).unwrap();
            for (j, &i) in g.members.iter().enumerate() {
                assert!(same_scored(&got[j], &single[i]), "{spec}: {}", feats[i].name);
                assert_eq!(bits(&got_u[j]), bits(&single_u[i]), "{spec}: {}", feats[i].name);
            }
        }
    }
}

#[test]
fn a_bucket_workspace_is_allocated_once() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "small_h64_l2_k16.pt");
    let ps: Vec<Protein> = [70, 90, 100, 110, 128, 66, 80]
        .iter()
        .map(|&l| mpnn::bench::synthetic_backbone(&format!("s{l}"), l, 50))
        .collect();
    let feats = features(&ps, false);
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let groups = router("64,128", &lengths, 3, 16, Padding::Longest).route(&lengths);
    assert_eq!(groups.len(), 3);
    assert!(groups.iter().all(|g| g.bucket == 1));
    let mut ws = Workspace::new();
    let mut capacity = Vec::new();
    for g in &groups {
        let items: Vec<&Features> = g.members.iter().map(|&i| &feats[i]).collect();
        let got = engine.unconditional_many(&items, Some(g.pad_to), &mut ws).unwrap();
        for (&i, lp) in g.members.iter().zip(&got) {
            assert_eq!(bits(lp), bits(&engine.unconditional(&feats[i])));
        }
        capacity.push(ws.capacity_rows());
    }
    assert_eq!(groups[0].pad_to, 128, "the largest group comes first");
    assert!(capacity[0] >= 3 * 128);
    assert!(capacity.iter().all(|&c| c == capacity[0]), "later batches reuse the first one's buffers: {capacity:?}");
    assert_eq!(ws.batches_run(), 3);
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let Some(dir) = parity_dir() else { return };
    let engine = engine(&dir, "full_k48.pt");
    let p = mpnn::bench::synthetic_backbone("s", 60, 500);
    let ca = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), true).unwrap();
    let full = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
    let mut ws = Workspace::new();
    let err = engine.unconditional_many(&[&full, &ca], None, &mut ws).unwrap_err();
    assert!(err.to_string().contains("s: CA-only features, but the model is full-backbone"), "{err}");
    let bad: Vec<Pass> = vec![(vec![0; 59], vec![0.0; 60])];
    let err = engine.score_many(&[(&full, &bad[..])], None, &mut ws).unwrap_err();
    assert_eq!(err, BatchError::WrongLength { name: "s".into(), pass: 1, what: "sequence", found: 59, len: 60 });
    let bad: Vec<Pass> = vec![(vec![0; 60], vec![0.0; 60]), (vec![0; 60], vec![0.0; 61])];
    let err = engine.conditional_many(&[(&full, &bad[..])], false, None, &mut ws).unwrap_err();
    assert!(err.to_string().contains("pass 2 has a random vector of length 61"), "{err}");
    assert!(engine.score_many(&[], None, &mut ws).unwrap().is_empty());
    assert_eq!(ws.batches_run(), 0, "nothing ran");
}

// ---- the command line ----

/// Files by relative path.
type Files = std::collections::BTreeMap<String, Vec<u8>>;

#[test]
fn command_line_outputs_are_byte_identical_for_any_batching() {
    let Some(dir) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let all = proteins(&dir);
    let short: Vec<Protein> = all
        .iter()
        .filter(|p| ["5L33_first30", "synthetic_30", "synthetic_47", "synthetic_60"].contains(&p.name.as_str()))
        .cloned()
        .collect();
    let jsonl = tmp.path().join("short.jsonl");
    mpnn::structure::write_jsonl(&jsonl, &short, false).unwrap();
    let st = |f: &str| dir.join("structures").join(f).display().to_string();
    let w = dir.join("weights/full_k48.pt").display().to_string();
    let j = jsonl.display().to_string();
    let jobs: [(&str, Vec<String>); 3] = [
        ("score", vec!["score".into(), "--num_seq_per_target".into(), "2".into()]),
        ("unconditional", vec!["probs".into(), "--unconditional".into()]),
        ("conditional", vec!["probs".into(), "--conditional".into()]),
    ];
    let settings: [&[&str]; 3] = [
        &[],
        &["--buckets", "quantiles:2", "--structure-batch", "3"],
        &["--buckets", "quantiles:1", "--structure_batch", "8"],
    ];
    for (job, extra) in &jobs {
        let mut seen: Option<(Files, Vec<u8>)> = None;
        for (n, setting) in settings.iter().enumerate() {
            let out = tmp.path().join(format!("{job}_{n}"));
            let mut args: Vec<String> = extra.clone();
            args.extend([st("5L33.pdb"), st("6MRR.pdb"), j.clone(), "--weights".into(), w.clone()]);
            args.extend(["--out".into(), out.display().to_string(), "--seed".into(), "3".into()]);
            args.extend(setting.iter().map(|s| s.to_string()));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = mpnn(&refs);
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
            let got = (files_under(&out), o.stdout.clone());
            assert_eq!(got.0.len(), 6, "{job}: {:?}", got.0.keys());
            match &seen {
                None => seen = Some(got),
                Some(first) => {
                    assert!(first.0 == got.0, "{job} {setting:?}: output files differ from one-at-a-time");
                    assert_eq!(String::from_utf8_lossy(&first.1), String::from_utf8_lossy(&got.1), "{job} {setting:?}");
                }
            }
        }
    }
}

#[test]
fn bad_batching_flags_fail_clearly() {
    let Some(dir) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let st = dir.join("structures/5L33.pdb").display().to_string();
    let w = dir.join("weights/full_k48.pt").display().to_string();
    let o_ = tmp.path().join("out").display().to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["score", "--buckets", "128,64"], "bucket bounds must increase: 64 comes after 128"),
        (&["score", "--buckets", "64,x"], "`x` is not a length"),
        (&["score", "--buckets", ""], "empty bucket spec"),
        (&["probs", "--unconditional", "--buckets", "quantiles:0"], "`quantiles:N` with N from 1"),
        (&["score", "--structure_batch", "0"], "a batch of 0 structures runs nothing"),
        (&["probs", "--conditional", "--structure-batch", "two"], "`two` is not a number of structures"),
        (&["--pdb_path", &st, "--out_folder", &o_, "--structure_batch", "2"], "design does not take them"),
    ];
    for (args, needle) in cases {
        let mut all: Vec<&str> = args.to_vec();
        if args[0] != "--pdb_path" {
            all.extend([st.as_str(), "--out", &o_]);
        }
        all.extend(["--weights", &w]);
        let o = mpnn(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{all:?} should fail");
        assert!(err.contains(needle), "{all:?}: error should say `{needle}`:\n{err}");
    }
    assert!(!tmp.path().join("out").exists(), "nothing written");
    let help = String::from_utf8_lossy(&mpnn(&["score", "--help"]).stdout).to_string();
    assert!(
        help.contains("--buckets <SPEC>") && help.contains("quantiles:N") && help.contains("--structure_batch <N>")
    );
}
