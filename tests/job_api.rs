//! The library's jobs (`mpnn::job`) against the command line: the same seed and options give
//! the same sequences, scores and log-probabilities, bit for bit; errors name the option as the
//! caller spells it.

mod common;

use std::path::Path;

use common::*;
use mpnn::featurize::Features;
use mpnn::job::{self, DesignOptions, JobError, Labels, Model, ResidueConstraints};
use mpnn::npz::Npz;
use mpnn::output;
use mpnn::structure::{read_structure, Protein};

fn load(parity: &Path, structure: &str) -> (Model, Protein) {
    let model = Model::from_file(&parity.join("weights/full_k48.pt"), Some(false), &Labels::CLI).unwrap();
    let protein = read_structure(&parity.join("structures").join(structure)).unwrap();
    (model, protein)
}

/// `(header line, sequence line)` of each record of a FASTA file.
fn records(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(2).map(|p| (p[0].to_string(), p[1].to_string())).collect()
}

fn field<'a>(header: &'a str, key: &str) -> &'a str {
    header
        .trim_start_matches('>')
        .split(", ")
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {header}"))
}

#[test]
fn library_design_equals_the_command_line_bit_for_bit() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let cli = [
        "design",
        &parity.join("structures/3HTN.pdb").display().to_string(),
        "--weights",
        &parity.join("weights/full_k48.pt").display().to_string(),
        "--out",
        &out.path().display().to_string(),
        "--num_seq_per_target",
        "4",
        "--batch_size",
        "2",
        "--sampling_temp",
        "0.1 0.3",
        "--seed",
        "37",
        "--chains",
        "A,B",
        "--fixed",
        "A1-10",
        "--tied",
        "A20-24,B20-24",
        "--bias",
        "W:2",
        "--omit",
        "C",
        "--save_probs",
        "1",
        "--suppress_print",
        "1",
    ]
    .map(String::from);
    let argv: Vec<&str> = cli.iter().map(String::as_str).collect();
    ok(&mpnn(&argv));

    let (model, protein) = load(&parity, "3HTN.pdb");
    let chains = ["A".to_string(), "B".to_string()];
    let sel = job::select_chains(&protein, Some(&chains), &Labels::KEYWORDS).unwrap();
    let residue = ResidueConstraints {
        fixed: Some("A1-10".parse().unwrap()),
        tied: Some("A20-24,B20-24".parse().unwrap()),
        labels: Labels::KEYWORDS,
        ..Default::default()
    };
    let mut bias_aa = [0.0; 21];
    bias_aa[mpnn::alphabet::index_of('W').unwrap() as usize] = 2.0;
    let opts = DesignOptions {
        temperatures: vec![0.1, 0.3],
        per_temperature: 4,
        seed: 37,
        omit: "XC".into(),
        bias_aa,
        labels: Labels::KEYWORDS,
        ..DesignOptions::default()
    };
    let f = job::prepare(&protein, &sel, Default::default(), &residue, &opts.omit, false).unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |n: usize| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    let result = job::design(&model, &f, &opts, &progress).unwrap();
    assert_eq!(done.into_inner(), 8, "progress reports every sequence");
    assert_eq!(result.designs.len(), 8);

    let recs = records(&out.path().join("seqs/3HTN.fa"));
    assert_eq!(recs.len(), 9);
    assert_eq!(field(&recs[0].0, "score"), output::np4(result.native.score));
    assert_eq!(field(&recs[0].0, "global_score"), output::np4(result.native.global_score));
    for (d, (h, seq)) in result.designs.iter().zip(&recs[1..]) {
        assert_eq!(&d.designed_sequence(&f), seq, "sample {}", d.index);
        assert_eq!(field(h, "T"), output::python_float(d.temperature));
        assert_eq!(field(h, "sample"), d.number.to_string());
        assert_eq!(field(h, "score"), output::np4(d.score));
        assert_eq!(field(h, "global_score"), output::np4(d.global_score));
        // Tied positions agree; fixed ones keep the native residue.
        let a = f.chain_ranges.iter().find(|r| r.0 == "A").unwrap().1;
        let b = f.chain_ranges.iter().find(|r| r.0 == "B").unwrap().1;
        for q in 19..24 {
            assert_eq!(d.sample.s[a + q], d.sample.s[b + q]);
        }
        assert_eq!(&d.sample.s[a..a + 10], &f.s[a..a + 10]);
        let c = mpnn::alphabet::index_of('C').unwrap();
        assert!(d.sample.s.iter().zip(f.design_mask()).all(|(&s, m)| m == 0.0 || s != c));
    }
    let probs = Npz::read(out.path().join("probs/3HTN.npz")).unwrap();
    let lp: Vec<f32> = result.designs.iter().flat_map(|d| d.log_probs.iter().copied()).collect();
    assert_eq!(probs.f32("log_probs").unwrap(), lp, "log_probs equal the CLI's --save_probs bit for bit");
    let pr: Vec<f32> = result.designs.iter().flat_map(|d| d.sample.probs.iter().copied()).collect();
    assert_eq!(probs.f32("probs").unwrap(), pr);
    let order: Vec<i64> =
        result.designs.iter().flat_map(|d| d.sample.decoding_order.iter().map(|&i| i as i64)).collect();
    assert_eq!(probs.i64("decoding_order").unwrap(), order);
}

#[test]
fn library_score_and_probs_equal_the_command_line() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let pdb = parity.join("structures/5L33.pdb").display().to_string();
    let weights = parity.join("weights/full_k48.pt").display().to_string();
    let o = out.path().display().to_string();
    let common = ["--weights", &weights, "--out", &o, "--seed", "5", "--suppress_print", "1"];
    ok(&mpnn(&[&["score", &pdb, "--num_seq_per_target", "2"][..], &common].concat()));
    ok(&mpnn(&[&["probs", &pdb, "--unconditional"][..], &common].concat()));
    ok(&mpnn(&[&["probs", &pdb, "--conditional", "--num_seq_per_target", "2"][..], &common].concat()));

    let (model, protein) = load(&parity, "5L33.pdb");
    let sel = job::select_chains(&protein, None, &Labels::CLI).unwrap();
    let f: Features = mpnn::featurize::featurize(&protein, &sel, &Default::default(), false).unwrap();
    let scored = job::score(&model, &f, std::slice::from_ref(&f.s), 2, 5).unwrap();
    let npz = Npz::read(out.path().join("score_only/5L33_pdb.npz")).unwrap();
    let scores: Vec<f32> = scored[0].iter().map(|(s, _)| s.score).collect();
    assert_eq!(npz.f32("score").unwrap(), scores);
    let lp = job::unconditional_probs(&model, &f).unwrap();
    let npz = Npz::read(out.path().join("unconditional_probs_only/5L33.npz")).unwrap();
    assert_eq!(npz.f32("log_p").unwrap()[..lp.len()], lp[..]);
    let cond = job::conditional_probs(&model, &f, 2, 5, false).unwrap();
    let npz = Npz::read(out.path().join("conditional_probs_only/5L33.npz")).unwrap();
    assert_eq!(npz.f32("log_p").unwrap(), cond.concat());
}

#[test]
fn errors_name_the_option_as_the_caller_spells_it() {
    let Some(parity) = parity_dir() else { return };
    let (model, protein) = load(&parity, "5L33.pdb");
    let sel = job::select_chains(&protein, None, &Labels::KEYWORDS).unwrap();
    let prepare = |r: ResidueConstraints, omit: &str| job::prepare(&protein, &sel, Default::default(), &r, omit, false);
    let kw = |r: ResidueConstraints| ResidueConstraints { labels: Labels::KEYWORDS, ..r };

    let e = prepare(kw(ResidueConstraints { fixed: Some("A200".parse().unwrap()), ..Default::default() }), "X");
    let msg = e.unwrap_err().to_string();
    assert!(msg.starts_with("fixed=: `A200`: position 200 is outside chain A of 5L33"), "{msg}");
    let e = prepare(ResidueConstraints { fixed: Some("A200".parse().unwrap()), ..Default::default() }, "X");
    assert!(e.unwrap_err().to_string().starts_with("--fixed: `A200`"));

    let e = prepare(kw(ResidueConstraints { fixed: Some("A1-106".parse().unwrap()), ..Default::default() }), "X");
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("nothing is designable") && msg.contains("fixed=, redesign="), "{msg}");

    let e = job::select_chains(&protein, Some(&["Q".to_string()]), &Labels::KEYWORDS).unwrap_err();
    assert!(matches!(e, JobError::UnknownChain { .. }) && e.to_string().contains("fix chains="), "{e}");

    let f = prepare(ResidueConstraints::default(), "X").unwrap();
    let bad = |o: DesignOptions| job::design(&model, &f, &o, &|_| {}).unwrap_err().to_string();
    let kwopts = DesignOptions { labels: Labels::KEYWORDS, ..DesignOptions::default() };
    let msg = bad(DesignOptions { temperatures: vec![0.0], ..kwopts.clone() });
    assert!(msg.starts_with("temperature= 0: temperatures must be positive"), "{msg}");
    let msg = bad(DesignOptions { per_temperature: 0, ..kwopts.clone() });
    assert!(msg.starts_with("num_seqs= 0"), "{msg}");
    let msg = bad(DesignOptions { backbone_noise: -1.0, ..kwopts.clone() });
    assert!(msg.starts_with("backbone_noise= -1: the noise is a standard deviation"), "{msg}");
    let msg = bad(DesignOptions { omit: "ACDEFGHIKLMNPQRSTVWY".into(), ..kwopts.clone() });
    assert!(msg.contains("every amino acid is omitted"), "{msg}");
    let msg = job::design_screened(&model, &model, 9, &f, &kwopts, &|_| {}).unwrap_err().to_string();
    assert!(msg.starts_with("keep= 9: keep between 1 and the 1 sequences"), "{msg}");
    let ca = Model::from_file(&parity.join("weights/ca_k48.pt"), None, &Labels::KEYWORDS).unwrap();
    let msg = job::design(&ca, &f, &kwopts, &|_| {}).unwrap_err().to_string();
    assert!(msg.contains("full-backbone structure but this is a CA-only model"), "{msg}");
    let msg =
        Model::from_file(&parity.join("weights/ca_k48.pt"), Some(false), &Labels::KEYWORDS).unwrap_err().to_string();
    assert!(msg.ends_with("this is a CA-only checkpoint; add ca_only=True"), "{msg}");
    // Weight lookup errors say how this caller gives weights of its own.
    let query = mpnn::checkpoint::WeightsQuery {
        path: None,
        folder: None,
        model_name: "v_99_999".into(),
        ca_only: false,
        soluble: false,
        offline: true,
    };
    let msg = Model::load(&query, None, &Labels::KEYWORDS).unwrap_err().to_string();
    assert!(msg.contains("unknown model name `v_99_999`") && msg.ends_with("weights_dir=DIR"), "{msg}");
    let msg = Model::load(&query, None, &Labels::CLI).unwrap_err().to_string();
    assert!(msg.ends_with("--weights FILE or --path_to_model_weights DIR"), "{msg}");
}

#[test]
fn screened_design_keeps_the_best_by_the_main_model() {
    let Some(parity) = parity_dir() else { return };
    let (model, protein) = load(&parity, "5L33.pdb");
    let fast = model.configured(None, Some(16), None, &Labels::CLI).unwrap();
    assert_eq!(fast.warnings().len(), 1, "k 16 is an approximation: {:?}", fast.warnings());
    let sel = job::select_chains(&protein, None, &Labels::CLI).unwrap();
    let f = job::prepare(&protein, &sel, Default::default(), &Default::default(), "X", false).unwrap();
    let opts = DesignOptions { per_temperature: 6, seed: 3, ..DesignOptions::default() };
    let kept = job::design_screened(&model, &fast, 2, &f, &opts, &|_| {}).unwrap();
    let all = job::design(&fast, &f, &opts, &|_| {}).unwrap();
    assert_eq!(kept.designs.len(), 2);
    assert!(kept.designs[0].score <= kept.designs[1].score);
    for d in &kept.designs {
        let screened = &all.designs[d.index];
        assert_eq!(d.sample.s, screened.sample.s, "the kept design is the screening model's sample {}", d.index);
        assert_eq!(d.screen.unwrap().score, screened.score);
        assert_ne!(d.score, screened.score, "rescored by the main model");
    }
    // Keeping all six ranks every sample by the main model; keeping two takes the first two.
    let ranked = job::design_screened(&model, &fast, 6, &f, &opts, &|_| {}).unwrap();
    assert!(ranked.designs.windows(2).all(|w| w[0].score <= w[1].score));
    let firsts: Vec<usize> = ranked.designs[..2].iter().map(|d| d.index).collect();
    assert_eq!(kept.designs.iter().map(|d| d.index).collect::<Vec<_>>(), firsts);
    // The native score is the main model's, whatever samples.
    assert_eq!(kept.native, job::design(&model, &f, &opts, &|_| {}).unwrap().native);
    assert_ne!(kept.native, all.native);
}
