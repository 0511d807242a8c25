//! `mpnn design` and the official default job: sequence design with every official constraint,
//! inline residue specs, many structures per run, sharding and resume.
//!
//! Randomness: sample `i` of structure `NAME` (counted over all temperatures in output order)
//! takes its decoding order from `stream(seed, NAME, DesignOrder, i)`, its draws from
//! `stream(seed, NAME, DesignDraws, i)` and (with `--backbone_noise`) its noise from
//! `stream(seed, NAME, Noise, i)`, so outputs do not depend on batch size, threads or shards.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mpnn::alphabet::{self, VOCAB};
use mpnn::featurize::{featurize, Batch, Constraints, Features, TiedMember};
use mpnn::inputs::{self, Dictionaries};
use mpnn::model::decoder::{decoding_order, score};
use mpnn::model::ProteinMpnn;
use mpnn::npz::NpzWriter;
use mpnn::output::{self, NativeHeader, TableRow};
use mpnn::preset::Preset;
use mpnn::rng::{self, Purpose};
use mpnn::sampler::{omit_vector, pssm_log_odds_mask, Multinomial, Sample, Sampler, SamplingOptions};
use mpnn::spec::{self, BiasSpec, ResidueItem, ResidueSpec, Shard, TiedSpec};
use mpnn::structure::{self, Protein};
use rayon::prelude::*;

use super::args::{Common, DesignOpts, Skip};
use super::common::*;
use super::resume;

/// Per-residue biases from `--bias-by-residue`: residue item → (letter, bias) pairs.
type ResidueBiases = Vec<(ResidueItem, Vec<(char, f32)>)>;

/// Inline options, parsed before any input is read.
struct Inline {
    temperatures: Vec<f64>,
    shard: Option<Shard>,
    fixed: Option<ResidueSpec>,
    redesign: Option<ResidueSpec>,
    tied: Option<TiedSpec>,
    bias: Option<BiasSpec>,
    omit: String,
    bias_by_residue: Option<ResidueBiases>,
    omit_by_residue: Option<Vec<(ResidueItem, String)>>,
}

fn parse_temperatures(s: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for t in s.split_whitespace() {
        let v: f64 = t.parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0).with_context(|| {
            format!(
                "--sampling_temp: `{t}` is not a temperature; temperatures must be positive numbers \
                 (0 or less is not a temperature), like \"0.1 0.2\""
            )
        })?;
        out.push(v);
    }
    if out.is_empty() {
        bail!("--sampling_temp is empty; give temperatures like \"0.1 0.2\"");
    }
    Ok(out)
}

fn read_json_object(flag: &str, path: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    inputs::expect_path(flag, path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {path}"))?;
    match serde_json::from_str(&text).with_context(|| format!("{flag}: {path} is not valid JSON"))? {
        serde_json::Value::Object(m) => Ok(m),
        _ => bail!("{flag}: {path} must hold a JSON object keyed by residue, like {{\"A12\": ...}}"),
    }
}

fn parse_inline(d: &DesignOpts) -> Result<Inline> {
    let spec = |flag: &str, v: &Option<String>| -> Result<Option<ResidueSpec>> {
        v.as_deref().map(|s| s.parse().with_context(|| format!("{flag} \"{s}\": not a residue spec"))).transpose()
    };
    let mut omit = spec::parse_letters(&d.omit_aas)
        .with_context(|| format!("--omit_AAs \"{}\": give letters of {}", d.omit_aas, alphabet::ALPHABET))?;
    if let Some(o) = &d.omit {
        for c in spec::parse_letters(o)
            .with_context(|| format!("--omit \"{o}\": give letters of {}", alphabet::ALPHABET))?
            .chars()
        {
            if !omit.contains(c) {
                omit.push(c);
            }
        }
    }
    if alphabet::ALPHABET.chars().take(20).all(|l| omit.contains(l)) {
        bail!(
            "--omit_AAs \"{}\"{}: every amino acid is omitted, so nothing could be sampled; leave at least one of {} allowed",
            d.omit_aas,
            d.omit.as_deref().map(|o| format!(" with --omit \"{o}\"")).unwrap_or_default(),
            &alphabet::ALPHABET[..20]
        );
    }
    let bias_by_residue = match &d.bias_by_residue {
        None => None,
        Some(path) => {
            let mut out = Vec::new();
            for (k, v) in read_json_object("--bias-by-residue", path)? {
                let item: ResidueItem = k.parse().with_context(|| format!("--bias-by-residue {path}: key `{k}`"))?;
                let obj = v.as_object().with_context(|| {
                    format!("--bias-by-residue {path}: `{k}` must map to {{\"LETTER\": bias}}, like {{\"W\": 2.0}}")
                })?;
                let mut row = Vec::new();
                for (l, x) in obj {
                    let letter = spec::parse_letters(l)
                        .ok()
                        .filter(|s| s.len() == 1)
                        .and_then(|s| s.chars().next())
                        .with_context(|| {
                            format!(
                                "--bias-by-residue {path}: `{k}`: `{l}` is not an amino-acid letter; use one of {}",
                                alphabet::ALPHABET
                            )
                        })?;
                    let x = x
                        .as_f64()
                        .with_context(|| format!("--bias-by-residue {path}: `{k}`/`{l}`: `{x}` is not a number"))?;
                    row.push((letter, x as f32));
                }
                out.push((item, row));
            }
            Some(out)
        }
    };
    let omit_by_residue = match &d.omit_by_residue {
        None => None,
        Some(path) => {
            let mut out = Vec::new();
            for (k, v) in read_json_object("--omit-by-residue", path)? {
                let item: ResidueItem = k.parse().with_context(|| format!("--omit-by-residue {path}: key `{k}`"))?;
                let letters = v
                    .as_str()
                    .with_context(|| format!("--omit-by-residue {path}: `{k}` must map to letters, like \"CP\""))?;
                let letters = spec::parse_letters(letters).with_context(|| {
                    format!("--omit-by-residue {path}: `{k}`: give letters of {}", alphabet::ALPHABET)
                })?;
                out.push((item, letters));
            }
            Some(out)
        }
    };
    Ok(Inline {
        temperatures: parse_temperatures(&d.sampling_temp)?,
        shard: d
            .shard
            .as_deref()
            .map(|s| s.parse::<Shard>().with_context(|| format!("--shard {s}: use I/N with 1 <= I <= N, e.g. 1/4")))
            .transpose()?,
        fixed: spec("--fixed", &d.fixed)?,
        redesign: spec("--redesign", &d.redesign)?,
        tied: d
            .tied
            .as_deref()
            .map(|s| s.parse::<TiedSpec>().with_context(|| format!("--tied \"{s}\": not a tied spec")))
            .transpose()?,
        bias: d
            .bias
            .as_deref()
            .map(|s| s.parse::<BiasSpec>().with_context(|| format!("--bias \"{s}\"")))
            .transpose()?,
        omit,
        bias_by_residue,
        omit_by_residue,
    })
}

/// The largest `--backbone_noise` (Å): far beyond any use (the official models were trained
/// with 0.02-0.3 Å; at 10 Å the backbone is noise).
const MAX_BACKBONE_NOISE: f32 = 10.0;

fn check_backbone_noise(sigma: f32) -> Result<()> {
    if sigma.is_nan() || sigma < 0.0 {
        bail!("--backbone_noise {sigma}: the noise is a standard deviation in Å and cannot be negative; give 0 (none) to {MAX_BACKBONE_NOISE}");
    }
    if sigma > MAX_BACKBONE_NOISE {
        bail!(
            "--backbone_noise {sigma}: {sigma} Å of noise is larger than any structure's detail (the official models \
             were trained with 0.02-0.3 Å); give at most {MAX_BACKBONE_NOISE}"
        );
    }
    Ok(())
}

/// Up to 10 items, then how many more.
fn list_some(items: &[String]) -> String {
    let shown = items.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(10) {
        0 => shown,
        n => format!("{shown} and {n} more"),
    }
}

/// The chain length and 1-based positions of `item` in `p`, or an error naming the flag.
fn resolve(flag: &str, item: &ResidueItem, p: &Protein) -> Result<(String, Vec<i64>)> {
    let chain = item.chain();
    let Some(c) = p.chain(chain) else {
        bail!(
            "{flag}: `{item}`: chain {chain} is not in {} (its chains are: {}); fix the spec",
            p.name,
            p.chain_ids().join(", ")
        );
    };
    let len = c.sequence.chars().count();
    if item.max_position() as usize > len {
        bail!(
            "{flag}: `{item}`: position {} is outside chain {chain} of {} (it has positions 1-{len}; positions are 1-based within the chain as parsed)",
            item.max_position(),
            p.name
        );
    }
    Ok((chain.to_string(), item.positions(len).into_iter().map(i64::from).collect()))
}

/// Adds the inline constraints to the dictionaries' ones for structure `p`.
fn apply_inline(inl: &Inline, d: &DesignOpts, p: &Protein, designed: &[String], c: &mut Constraints) -> Result<()> {
    let chain_len = |id: &str| p.chain(id).map(|c| c.sequence.chars().count()).unwrap_or(0);
    let mut fixed_set: BTreeSet<(String, i64)> = BTreeSet::new();
    if let Some(spec) = &inl.fixed {
        for item in &spec.0 {
            let (chain, pos) = resolve("--fixed", item, p)?;
            fixed_set.extend(pos.into_iter().map(|q| (chain.clone(), q)));
        }
    }
    if let Some(spec) = &inl.redesign {
        let mut keep: BTreeSet<(String, i64)> = BTreeSet::new();
        for item in &spec.0 {
            let (chain, pos) = resolve("--redesign", item, p)?;
            if !designed.contains(&chain) {
                bail!(
                    "--redesign: `{item}`: chain {chain} of {} is not designed (designed: {}); add it to --chains or drop it",
                    p.name,
                    designed.join(", ")
                );
            }
            keep.extend(pos.into_iter().map(|q| (chain.clone(), q)));
        }
        if let Some(both) = keep.iter().find(|k| fixed_set.contains(k)) {
            bail!(
                "--fixed and --redesign both name {}{} of {}: a residue cannot be fixed and redesigned; remove it from one of them",
                both.0,
                both.1,
                p.name
            );
        }
        for chain in designed {
            for q in 1..=chain_len(chain) as i64 {
                if !keep.contains(&(chain.clone(), q)) {
                    fixed_set.insert((chain.clone(), q));
                }
            }
        }
    }
    if !fixed_set.is_empty() {
        let m = c.fixed_positions.get_or_insert_with(BTreeMap::new);
        for (chain, q) in fixed_set {
            let v = m.entry(chain).or_default();
            if !v.contains(&q) {
                v.push(q);
            }
        }
    }
    let mut groups: Vec<Vec<TiedMember>> = Vec::new();
    if let Some(spec) = &inl.tied {
        for g in &spec.0 {
            let members = g.iter().map(|m| resolve("--tied", m, p)).collect::<Result<Vec<_>>>()?;
            let lens: Vec<usize> = members.iter().map(|m| m.1.len()).collect();
            if lens.windows(2).any(|w| w[0] != w[1]) {
                let shown: Vec<String> = g.iter().zip(&lens).map(|(m, n)| format!("{m} ({n})")).collect();
                bail!(
                    "--tied: group `{}` of {} ties members of unequal length: {}; give each member the same number of positions",
                    g.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(","),
                    p.name,
                    shown.join(", ")
                );
            }
            for k in 0..lens[0] {
                groups.push(
                    members
                        .iter()
                        .map(|(chain, pos)| TiedMember { chain: chain.clone(), positions: vec![pos[k]], betas: None })
                        .collect(),
                );
            }
        }
    }
    if d.homo_oligomer {
        let mut chains: Vec<String> = designed.to_vec();
        chains.sort();
        let lens: Vec<usize> = chains.iter().map(|c| chain_len(c)).collect();
        if lens.windows(2).any(|w| w[0] != w[1]) {
            let shown: Vec<String> = chains.iter().zip(&lens).map(|(c, n)| format!("{c}: {n}")).collect();
            bail!(
                "--homo-oligomer: the designed chains of {} have unequal lengths ({}); design chains of equal length (--chains) or drop --homo-oligomer",
                p.name,
                shown.join(", ")
            );
        }
        for q in 1..=lens.first().copied().unwrap_or(0) as i64 {
            groups.push(
                chains.iter().map(|c| TiedMember { chain: c.clone(), positions: vec![q], betas: None }).collect(),
            );
        }
    }
    if !groups.is_empty() {
        c.tied.get_or_insert_with(Vec::new).extend(groups);
    }
    if let Some(items) = &inl.bias_by_residue {
        let m = c.bias_by_res.get_or_insert_with(BTreeMap::new);
        for (item, row) in items {
            let (chain, pos) = resolve("--bias-by-residue", item, p)?;
            let rows = m.entry(chain.clone()).or_insert_with(|| vec![[0f32; VOCAB]; chain_len(&chain)]);
            for q in pos {
                for &(l, v) in row {
                    rows[q as usize - 1][alphabet::index_of(l).unwrap() as usize] += v;
                }
            }
        }
    }
    if let Some(items) = &inl.omit_by_residue {
        let m = c.omit_aa.get_or_insert_with(BTreeMap::new);
        for (item, letters) in items {
            let (chain, pos) = resolve("--omit-by-residue", item, p)?;
            m.entry(chain).or_default().push((pos, letters.clone()));
        }
    }
    Ok(())
}

/// One structure to design.
struct Job {
    protein: Protein,
    source: PathBuf,
    features: Features,
    log_odds_mask: Vec<f32>,
}

/// One finished design.
struct Design {
    /// Index among the structure's generated samples in output order (temperature-major).
    slot: usize,
    sample: Sample,
    log_probs: Vec<f32>,
    score: f32,
    global: f32,
    recovery: f32,
    /// With --screen: the screening configuration's (score, global_score).
    screen: Option<(f32, f32)>,
}

fn noisy(f: &Features, sigma: f32, seed: u64, i: u64) -> Features {
    let mut g = f.clone();
    let noise = rng::randn(&mut rng::stream(seed, &f.name, Purpose::Noise, i), g.x.len());
    for (x, n) in g.x.iter_mut().zip(noise) {
        *x += sigma * n;
    }
    g
}

fn finish(
    model: &ProteinMpnn,
    enc: &mpnn::model::encoder::Encoded,
    f: &Features,
    slot: usize,
    sample: Sample,
) -> Design {
    // Untied samples carry the log-probabilities `forward()` gives them with their own
    // decoding order (computed while decoding); tied ones are rescored.
    let lp = match &sample.log_probs {
        Some(lp) => lp.clone(),
        None => model.forward(enc, &sample.s, &sample.decoding_order),
    };
    let design = f.design_mask();
    let score_v = score(&lp, &sample.s, &design);
    let global = score(&lp, &sample.s, &f.mask);
    let den: f32 = design.iter().sum();
    let same: f32 = design.iter().enumerate().filter(|(i, _)| sample.s[*i] == f.s[*i]).map(|(_, &m)| m).sum();
    Design { slot, sample, log_probs: lp, score: score_v, global, recovery: same / den, screen: None }
}

/// Cascade screening: rescores every design (sampled with the screening model) with the main
/// model on the design's own decoding order, and keeps the `keep` best by the main model's
/// score (ties: the earlier sample first), best first.
fn screen_and_keep(model: &ProteinMpnn, f: &Features, designs: Vec<Design>, keep: usize) -> Vec<Design> {
    let enc = model.encode(&Batch::new(&[f], None));
    let mut rescored: Vec<Design> = designs
        .into_par_iter()
        .map(|mut x| {
            let screen = (x.score, x.global);
            x.sample.log_probs = None;
            let mut full = finish(model, &enc, f, x.slot, x.sample);
            full.screen = Some(screen);
            full
        })
        .collect();
    rescored.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.slot.cmp(&b.slot)));
    rescored.truncate(keep);
    rescored
}

/// How `mpnn` was asked to design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `mpnn design`: resumes what the same parameters made.
    Subcommand,
    /// The official flags: always redoes every structure, like the official script.
    Official,
}

/// Every parameter of the run that decides the designs (see [`resume`]), except those of the
/// structures themselves ([`resume::structure_params`]).
fn design_params(
    c: &Common,
    d: &DesignOpts,
    inl: &Inline,
    bias_aa: [f32; VOCAB],
    per_temp: usize,
    weights: &Path,
) -> Result<resume::Params> {
    let mut p = resume::Params::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    put("--seed", if c.seed == 0 { "0 (random)".into() } else { c.seed.to_string() });
    put("--sampling_temp", inl.temperatures.iter().map(|&t| resume::num(t)).collect::<Vec<_>>().join(" "));
    put("--num_seq_per_target (sequences per temperature)", per_temp.to_string());
    put("--backbone_noise", resume::num32(d.backbone_noise));
    let mut omit: Vec<char> = inl.omit.chars().collect();
    omit.sort();
    omit.dedup();
    put("--omit_AAs / --omit", omit.into_iter().collect());
    let bias: Vec<String> = bias_aa
        .iter()
        .enumerate()
        .filter(|(_, &v)| v != 0.0)
        .map(|(i, &v)| format!("{}:{}", alphabet::letter_of(i as u8), resume::num32(v)))
        .collect();
    put("--bias / --bias_AA_jsonl", if bias.is_empty() { "none".into() } else { bias.join(",") });
    put("--pssm_multi", resume::num32(d.pssm_multi));
    put("--pssm_threshold", resume::num32(d.pssm_threshold));
    put("--pssm_log_odds_flag", d.pssm_log_odds_flag.to_string());
    put("--pssm_bias_flag", d.pssm_bias_flag.to_string());
    put("--ca_only", c.ca_only.to_string());
    put("--model_name", c.model_name.clone());
    put("weights (file content)", resume::file_hash(weights)?);
    let k = c.k.or(c.preset.and_then(Preset::k));
    put("--k", k.map_or("the checkpoint's".into(), |k| k.to_string()));
    put("--precision", c.precision.or(c.preset.map(Preset::precision)).unwrap_or_default().to_string());
    put("--screen", d.screen.map_or("none".into(), |s| s.to_string()));
    put("--keep", d.keep.map_or("none".into(), |k| k.to_string()));
    put(
        "--screen-weights (file content)",
        match &d.screen_weights {
            Some(w) => resume::file_hash(w).with_context(|| format!("--screen-weights {}", w.display()))?,
            None => "the main weights".into(),
        },
    );
    put("--save_score", d.save_score.to_string());
    put("--save_probs", d.save_probs.to_string());
    if d.save_probs.on() {
        // probs/NAME.npz stores `mask` and `chain_order` once per batch member, as officially.
        put("--batch_size (rows of mask and chain_order in probs/NAME.npz)", c.batch_size.to_string());
    }
    put("--save-structures", d.save_structures.to_string());
    Ok(p)
}

/// Removes what an earlier run wrote for structure `name` (FASTA, scores, probabilities,
/// threaded structures, parameter record), so no output of it outlives this run's.
fn clear_previous(base: &Path, name: &str) -> Result<()> {
    resume::remove_if_exists(&base.join("seqs").join(format!("{name}.fa")))?;
    resume::remove_record(base, name)?;
    resume::remove_if_exists(&base.join("scores").join(format!("{name}.npz")))?;
    resume::remove_if_exists(&base.join("probs").join(format!("{name}.npz")))?;
    let dir = base.join("structures");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let prefix = format!("{name}_sample_");
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let numbered = file
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".pdb"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if numbered {
                resume::remove_if_exists(&e.path())?;
            }
        }
    }
    Ok(())
}

pub fn run(c: &Common, d: &DesignOpts, skip: &Skip, mode: Mode) -> Result<()> {
    init_threads(c)?;
    let quiet = c.suppress_print.on();
    let inl = parse_inline(d)?;
    passes(c)?;
    let num_batches = c.num_seq_per_target / c.batch_size;
    let per_temp = num_batches * c.batch_size;
    check_backbone_noise(d.backbone_noise)?;
    // Official dictionaries.
    let read =
        |flag: &str, v: &Option<String>| -> Result<Option<(String, serde_json::Map<String, serde_json::Value>)>> {
            match v.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => Ok(Some((path.to_string(), inputs::read_dict_file(flag, path)?))),
                None => Ok(None),
            }
        };
    let mut dicts: Dictionaries = dictionaries(c)?;
    dicts.omit_aa = read("--omit_AA_jsonl", &d.omit_aa_jsonl)?;
    dicts.bias_by_res = read("--bias_by_res_jsonl", &d.bias_by_res_jsonl)?;
    dicts.pssm = read("--pssm_jsonl", &d.pssm_jsonl)?;
    dicts.tied_positions = read("--tied_positions_jsonl", &d.tied_positions_jsonl)?;
    if let Some((src, m)) = read("--bias_AA_jsonl", &d.bias_aa_jsonl)? {
        dicts.bias_aa = inputs::bias_vector(&src, &m)?;
    }
    let mut bias_aa = dicts.bias_aa;
    if let Some(b) = &inl.bias {
        for &(l, v) in &b.0 {
            bias_aa[alphabet::index_of(l).unwrap() as usize] += v;
        }
    }

    // Structures and their features: every check first, for every structure (also those of
    // other shards, so every shard agrees on what is invalid and on the shard split).
    let mut inputs = read_inputs(c, quiet)?;
    let prepared = inputs.prepare_each(|input| {
        let p = &input.protein;
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        let mut cons = dicts.constraints(&p.name)?;
        apply_inline(&inl, d, p, &sel.designed, &mut cons)?;
        let f = featurize(p, &sel, &cons, c.ca_only)?;
        if f.masked_chains.is_empty() {
            bail!("{}: no chain is designed; name the chains to design (--chains or --chain_id_jsonl)", p.name);
        }
        if f.design_mask().iter().all(|&m| m == 0.0) {
            bail!(
                "{}: nothing is designable: every residue of the designed chains ({}) is fixed or lacks backbone \
                 coordinates; free some positions (--fixed, --redesign, --fixed_positions_jsonl) or design other chains",
                p.name,
                f.masked_chains.join(", ")
            );
        }
        let blocked = f.fully_omitted(&omit_vector(&inl.omit));
        if !blocked.is_empty() {
            bail!(
                "{}: at designed position{} {} every amino acid is omitted (--omit_AAs/--omit plus \
                 --omit_AA_jsonl/--omit-by-residue), so nothing could be sampled; allow at least one letter there or fix the position",
                p.name,
                if blocked.len() == 1 { "" } else { "s" },
                list_some(&blocked)
            );
        }
        Ok(f)
    });
    let base = out_base(c)?;
    let fasta_path = |name: &str| base.join("seqs").join(format!("{name}.fa"));
    check_unique_names(prepared.iter().map(|(i, _)| (i.protein.name.as_str(), &i.source)), fasta_path)?;
    let skip_list = base.join("skipped.tsv");
    settle_invalid(&inputs.invalid, prepared.len(), skip.skip_invalid, &skip_list)?;
    let mut prepared: Vec<(Input, Features)> = prepared;
    if let Some(sh) = inl.shard {
        let mut idx: Vec<usize> = (0..prepared.len()).collect();
        idx.sort_by(|&a, &b| prepared[a].0.protein.name.cmp(&prepared[b].0.protein.name).then(a.cmp(&b)));
        let mut take = vec![false; prepared.len()];
        for (k, &i) in idx.iter().enumerate() {
            take[i] = sh.takes(k);
        }
        let mut it = take.into_iter();
        prepared.retain(|_| it.next().unwrap());
    }
    let jobs: Vec<Job> = prepared
        .into_iter()
        .map(|(input, f)| {
            let log_odds_mask = pssm_log_odds_mask(&f, d.pssm_threshold);
            Job { protein: input.protein, source: input.source.path, features: f, log_odds_mask }
        })
        .collect();
    if let Some(t) = &d.table {
        let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "csv" && ext != "jsonl" {
            bail!("--table {}: the table file must end in .csv or .jsonl", t.display());
        }
    }

    // Cascade screening: checked before any work.
    let generated = inl.temperatures.len() * per_temp;
    if let (Some(p), Some(keep)) = (d.screen, d.keep) {
        if keep == 0 || keep > generated {
            bail!(
                "--keep {keep}: keep between 1 and the {generated} sequences generated per structure \
                 (--num_seq_per_target × temperatures); raise --num_seq_per_target to screen more"
            );
        }
        if d.backbone_noise > 0.0 {
            bail!("--screen with --backbone_noise is not supported: each sample would need its own noisy backbone rescored; drop one of them");
        }
        if p.needs_pruned() && d.screen_weights.is_none() {
            bail!("--screen {p} runs a pruned checkpoint; pass it with --screen-weights FILE (or screen with fast or balanced)");
        }
    }
    // Resume: a complete seqs/NAME.fa whose record holds this run's parameters is done; one
    // made with other parameters (or with none recorded) stops the run unless --overwrite. The
    // official flags always redo everything, like the official script.
    let official = mode == Mode::Official;
    let overwrite = d.overwrite || official;
    // (No structure to design, no weights needed.)
    let weights = if jobs.is_empty() { PathBuf::new() } else { weights_path(c)? };
    let run_params = match official || jobs.is_empty() {
        true => None,
        false => Some(design_params(c, d, &inl, bias_aa, per_temp, &weights)?),
    };
    let params_of = |f: &Features| -> Option<resume::Params> {
        run_params.as_ref().map(|g| {
            let mut p = g.clone();
            p.extend(resume::structure_params(f));
            p
        })
    };
    let expected_records = d.keep.unwrap_or(generated);
    // The number of records of seqs/NAME.fa when it is a whole design file (not cut short).
    let records = |name: &str| -> Option<usize> {
        std::fs::read_to_string(fasta_path(name))
            .ok()
            .and_then(|t| output::parse_design_fasta(&t))
            .map(|(_, _, rows)| rows.len())
    };
    let mut todo = Vec::new();
    let mut skipped = Vec::new();
    let mut conflicts = Vec::new();
    for (k, job) in jobs.iter().enumerate() {
        let name = &job.features.name;
        let Some(n) = records(name).filter(|_| !overwrite) else {
            todo.push(k);
            continue;
        };
        let mine = params_of(&job.features).unwrap_or_default();
        match resume::read_record(&base, name) {
            // (With the same parameters, a file short of records was damaged: redo it.)
            Some(old) if old == mine && n != expected_records => todo.push(k),
            Some(old) if old == mine => {
                if !quiet {
                    println!(
                        "Skipping {name}: {} is complete, designed with the same parameters (pass --overwrite to redo it)",
                        fasta_path(name).display()
                    );
                }
                skipped.push(k);
            }
            Some(old) => conflicts.push(format!("  {name}: {}", resume::diff(&old, &mine).join("; "))),
            None => conflicts.push(format!(
                "  {name}: {} holds no record of the parameters that made it ({} is missing: written with the \
                 official flags or by an older mpnn)",
                fasta_path(name).display(),
                resume::record_path(&base, name).display()
            )),
        }
    }
    if !conflicts.is_empty() {
        let n = conflicts.len();
        if n > 20 {
            conflicts.truncate(20);
            conflicts.push(format!("  ... and {} more", n - 20));
        }
        bail!(
            "{}: {n} structure{} of this run {} already designed there with other parameters (or unknown ones), and \
             resuming would keep those designs:\n{}\nPass --overwrite to redo {} with this run's parameters, or write \
             to another --out folder. Nothing was written.",
            base.display(),
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" },
            conflicts.join("\n"),
            if n == 1 { "it" } else { "them" }
        );
    }
    write_skip_list(&skip_list, &inputs.invalid)?;

    let seed = seed(c);
    let t_start = Instant::now();
    let mut n_seqs = 0usize;
    let mut n_res = 0usize;
    if !todo.is_empty() {
        let (raw, raw_path) = load_checkpoint(c, Some(&weights), quiet)?;
        let model_name = checkpoint_name(&raw_path);
        let engine = configure(raw.clone(), &raw_path, c.preset, c.k, c.precision)?;
        let model = &engine.model;
        let screen_engine = match d.screen {
            None => None,
            Some(p) => {
                let (e, path) = match &d.screen_weights {
                    Some(w) => load_checkpoint(c, Some(w), true)?,
                    None => (raw, raw_path),
                };
                Some(configure(e, &path, Some(p), None, None)?)
            }
        };
        for sub in ["seqs"]
            .iter()
            .chain(d.save_score.on().then_some(&"scores"))
            .chain(d.save_probs.on().then_some(&"probs").into_iter().chain(d.save_structures.then_some(&"structures")))
        {
            out_dir(c, sub)?;
        }
        let total: usize = todo.len() * generated;
        let bar = indicatif::ProgressBar::new(total as u64);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} sequences ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        for &k in &todo {
            let job = &jobs[k];
            let f = &job.features;
            bar.set_message(f.name.clone());
            if !quiet {
                bar.suspend(|| println!("Generating sequences for: {}", f.name));
            }
            let t0 = Instant::now();
            let designs = match (&screen_engine, d.keep) {
                (Some(se), Some(keep)) => screen_and_keep(
                    model,
                    f,
                    design_structure(&se.model, job, d, &inl, bias_aa, seed, per_temp, &bar),
                    keep,
                ),
                _ => design_structure(model, job, d, &inl, bias_aa, seed, per_temp, &bar),
            };
            let native = native_scores(model, f, seed);
            // The previous outputs go first (so none outlives this run's), then the record, then
            // the new outputs with the FASTA last: an interruption never leaves a complete FASTA
            // with a record that does not match it.
            clear_previous(&base, &f.name)?;
            if let Some(p) = params_of(f) {
                resume::write_record(&base, &f.name, &p, seed, &weights)?;
            }
            write_outputs(c, d, &base, job, &inl, &designs, seed, per_temp, native, &model_name)?;
            let dt = t0.elapsed().as_secs_f64();
            n_seqs += designs.len();
            n_res += designs.len() * f.masked_chain_lengths.iter().sum::<usize>();
            if !quiet {
                bar.suspend(|| {
                    println!(
                        "{} sequences of length {} generated in {} seconds",
                        designs.len(),
                        f.len(),
                        output::python_float((dt * 1e4).round() / 1e4)
                    )
                });
            }
        }
        bar.finish_and_clear();
    }
    if let Some(t) = &d.table {
        let mut rows = Vec::new();
        for job in &jobs {
            let name = &job.features.name;
            let text = std::fs::read_to_string(fasta_path(name))
                .with_context(|| format!("--table: cannot read {}", fasta_path(name).display()))?;
            let (_, _, samples) = output::parse_design_fasta(&text)
                .with_context(|| format!("--table: {} is not a complete design file", fasta_path(name).display()))?;
            rows.extend(samples.into_iter().map(|row| TableRow { structure: name.clone(), row }));
        }
        let jsonl = t.extension().and_then(|e| e.to_str()) == Some("jsonl");
        if let Some(dir) = t.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("--table: cannot create {}", dir.display()))?;
        }
        structure::write_atomic(t, output::table_text(&rows, jsonl).as_bytes())
            .with_context(|| format!("--table: cannot write {}", t.display()))?;
    }
    if !quiet {
        let secs = t_start.elapsed().as_secs_f64();
        eprintln!(
            "designed {n_seqs} sequences ({n_res} residues) for {} structures in {secs:.2} s ({:.2} sequences/s){}",
            todo.len(),
            if secs > 0.0 { n_seqs as f64 / secs } else { 0.0 },
            if skipped.is_empty() { String::new() } else { format!("; {} already complete, skipped", skipped.len()) }
        );
    }
    Ok(())
}

/// Every design of one structure, in output order.
#[allow(clippy::too_many_arguments)]
fn design_structure(
    model: &ProteinMpnn,
    job: &Job,
    d: &DesignOpts,
    inl: &Inline,
    bias_aa: [f32; VOCAB],
    seed: u64,
    per_temp: usize,
    bar: &indicatif::ProgressBar,
) -> Vec<Design> {
    let f = &job.features;
    let l = f.len();
    let options = |t: f64| SamplingOptions {
        temperature: t as f32,
        omit_aas: omit_vector(&inl.omit),
        bias_aa,
        pssm_multi: d.pssm_multi,
        pssm_log_odds_flag: d.pssm_log_odds_flag.on(),
        pssm_bias_flag: d.pssm_bias_flag.on(),
    };
    // (global sample index, temperature) in output order, decoded batch by batch.
    let all: Vec<(usize, f64)> = inl
        .temperatures
        .iter()
        .enumerate()
        .flat_map(|(ti, &t)| (0..per_temp).map(move |s| (ti * per_temp + s, t)))
        .collect();
    let draw = |i: usize| {
        let randn = rng::randn(&mut rng::stream(seed, &f.name, Purpose::DesignOrder, i as u64), l);
        let chooser = Multinomial(rng::stream(seed, &f.name, Purpose::DesignDraws, i as u64));
        (randn, chooser)
    };
    if d.backbone_noise > 0.0 {
        return all
            .par_iter()
            .map(|&(i, t)| {
                let g = noisy(f, d.backbone_noise, seed, i as u64);
                let enc = model.encode(&Batch::new(&[&g], None));
                let sampler = Sampler::new(model, &enc, &g, job.log_odds_mask.clone(), options(t));
                let (randn, mut chooser) = draw(i);
                let sample = sampler.sample(&randn, &mut chooser);
                bar.inc(1);
                finish(model, &enc, &g, i, sample)
            })
            .collect();
    }
    let enc = model.encode(&Batch::new(&[f], None));
    let mut out = Vec::with_capacity(all.len());
    for &t in &inl.temperatures {
        let sampler = Sampler::new(model, &enc, f, job.log_odds_mask.clone(), options(t));
        let mine: Vec<usize> = all.iter().filter(|x| x.1 == t).map(|x| x.0).collect();
        // Results never depend on how samples are grouped, so every sample of a temperature is
        // decoded together (in groups that bound memory), whatever --batch_size says.
        let group = DECODE_GROUP.min(mine.len().max(1));
        let chunks: Vec<&[usize]> = mine.chunks(group).collect();
        let done: Vec<Vec<Design>> = chunks
            .par_iter()
            .map(|ids| {
                let drawn: Vec<(Vec<f32>, _)> = ids.iter().map(|&i| draw(i)).collect();
                let randns: Vec<&[f32]> = drawn.iter().map(|x| x.0.as_slice()).collect();
                let mut choosers: Vec<_> = drawn.iter().map(|x| x.1.clone()).collect();
                let mut refs: Vec<&mut dyn mpnn::sampler::Chooser> =
                    choosers.iter_mut().map(|c| c as &mut dyn mpnn::sampler::Chooser).collect();
                let samples = sampler.sample_many(&randns, &mut refs);
                let r: Vec<Design> =
                    samples.into_iter().zip(ids.iter()).map(|(s, &i)| finish(model, &enc, f, i, s)).collect();
                bar.inc(r.len() as u64);
                r
            })
            .collect();
        out.extend(done.into_iter().flatten());
    }
    out
}

/// Samples of one structure decoded together per call (bounds the per-call state memory).
const DECODE_GROUP: usize = 32;

/// The native sequence's official score: one forward pass with its own decoding order.
fn native_scores(model: &ProteinMpnn, f: &Features, seed: u64) -> (f32, f32) {
    let enc = model.encode(&Batch::new(&[f], None));
    let randn = rng::randn(&mut rng::stream(seed, &f.name, Purpose::ScoreOrder, 0), f.len());
    let design = f.design_mask();
    let lp = model.forward(&enc, &f.s, &decoding_order(&design, &randn));
    (score(&lp, &f.s, &design), score(&lp, &f.s, &f.mask))
}

#[allow(clippy::too_many_arguments)]
fn write_outputs(
    c: &Common,
    d: &DesignOpts,
    base: &Path,
    job: &Job,
    inl: &Inline,
    designs: &[Design],
    seed: u64,
    per_temp: usize,
    (score_n, global_n): (f32, f32),
    model_name: &str,
) -> Result<()> {
    let f = &job.features;
    let l = f.len();
    let n = designs.len();
    let name = &f.name;
    let write = |path: PathBuf, bytes: &[u8]| -> Result<()> {
        structure::write_atomic(&path, bytes).with_context(|| format!("{}: cannot write", path.display()))
    };
    if d.save_score.on() {
        let mut w = NpzWriter::new();
        w.f32("score", &[n], designs.iter().map(|x| x.score).collect()).f32(
            "global_score",
            &[n],
            designs.iter().map(|x| x.global).collect(),
        );
        write(base.join("scores").join(format!("{name}.npz")), &w.to_bytes()?)?;
    }
    if d.save_probs.on() {
        let b = c.batch_size;
        let mask = f.design_mask();
        let mut w = NpzWriter::new();
        w.f32("probs", &[n, l, VOCAB], designs.iter().flat_map(|x| x.sample.probs.iter().copied()).collect())
            .f32("log_probs", &[n, l, VOCAB], designs.iter().flat_map(|x| x.log_probs.iter().copied()).collect())
            .i32("S", &[n, l], designs.iter().flat_map(|x| x.sample.s.iter().map(|&v| v as i32)).collect())
            .f32("mask", &[b, l], mask.repeat(b))
            .strings(
                "chain_order",
                &[b, f.chain_order.len()],
                (0..b).flat_map(|_| f.chain_order.iter().cloned()).collect(),
            )
            .i64(
                "decoding_order",
                &[n, l],
                designs.iter().flat_map(|x| x.sample.decoding_order.iter().map(|&v| v as i64)).collect(),
            );
        write(base.join("probs").join(format!("{name}.npz")), &w.to_bytes()?)?;
    }
    if d.save_structures {
        let firsts = if job.source.to_string_lossy().to_lowercase().ends_with(".pdb") {
            output::pdb_first_residue_numbers(&std::fs::read_to_string(&job.source).unwrap_or_default())
        } else {
            HashMap::new()
        };
        for (k, x) in designs.iter().enumerate() {
            let mut letters: HashMap<String, Vec<char>> = HashMap::new();
            for (chain, start, end) in &f.chain_ranges {
                letters
                    .insert(chain.clone(), x.sample.s[*start..*end].iter().map(|&a| alphabet::letter_of(a)).collect());
            }
            let remark = format!(
                "mpnn design of {name}: T={}, sample={}, score={}, global_score={}",
                output::python_float(inl.temperatures[x.slot / per_temp]),
                x.slot % per_temp + 1,
                output::np4(x.score),
                output::np4(x.global)
            );
            let pdb = output::threaded_pdb(&job.protein, &letters, &firsts, c.ca_only, &remark);
            write(base.join("structures").join(format!("{name}_sample_{}.pdb", k + 1)), pdb.as_bytes())?;
        }
    }
    // The FASTA last: a complete one marks the structure as done.
    let hash = format!("mpnn-{}", env!("CARGO_PKG_VERSION"));
    let mut text = output::native_record(
        &NativeHeader {
            name,
            score: score_n,
            global_score: global_n,
            fixed_chains: &f.visible_chains,
            designed_chains: &f.masked_chains,
            ca_only: c.ca_only,
            model_name,
            git_hash: &hash,
            seed,
        },
        &output::designed_sequence(&f.s, &f.chain_m, &f.masked_chain_lengths),
    );
    for x in designs {
        let mut record = output::sample_record(
            inl.temperatures[x.slot / per_temp],
            x.slot % per_temp + 1,
            x.score,
            x.global,
            x.recovery,
            &output::designed_sequence(&x.sample.s, &f.chain_m, &f.masked_chain_lengths),
        );
        if let Some((s, g)) = x.screen {
            // `>T=..., seq_recovery=R` + the screening model's scores.
            let at = record.find('\n').unwrap_or(record.len());
            record
                .insert_str(at, &format!(", screen_score={}, screen_global_score={}", output::np4(s), output::np4(g)));
        }
        text.push_str(&record);
    }
    write(base.join("seqs").join(format!("{name}.fa")), text.as_bytes())
}
