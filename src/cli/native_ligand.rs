//! `mpnn design / score / probs` with a LigandMPNN-family model (`--model_type`, or a checkpoint
//! with atom-context tensors): the command line around [`mpnn::job::ligand`]. Many structures
//! per run (files, folders, globs, `--list`), one model load, `--shard` and resume (design),
//! the native output files.
//!
//! Options of the native ProteinMPNN path that these models do not take (CA-only, `--k`,
//! `--precision`, presets, backbone noise, PSSMs, screening, the official jsonl dictionaries,
//! threaded structures) are refused with the alternative, before any work.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mpnn::alphabet;
use mpnn::checkpoint;
use mpnn::job::ligand::{self, LigandModel, LigandOptions, LigandPrepared, LigandSelection, ProbsKind};
use mpnn::npz::NpzWriter;
use mpnn::output::{self, NativeHeader};
use mpnn::pipeline::{fmt4, mean_std};
use mpnn::spec::{self, Shard};
use mpnn::structure;

use super::args::{Common, DesignOpts, Skip};
use super::common::*;
use super::resume;

/// The LigandMPNN model this run asks for: `--model_type`, or a `--weights` file whose tensors
/// are LigandMPNN's atom-context (or membrane) layout; `None`: the native ProteinMPNN path.
pub fn model_for(c: &Common) -> Result<Option<LigandModel>> {
    let explicit = c.ligand.model_type;
    let weights = match (&c.weights, explicit) {
        (Some(w), _) => w.clone(),
        (None, None) => return Ok(None),
        (None, Some(t)) => bail!(
            "--model_type {t}: give the LigandMPNN checkpoint with --weights FILE (see README \"LigandMPNN\" for \
             where the official weights live)"
        ),
    };
    let ckpt = match checkpoint::load(&weights) {
        Ok(c) => c,
        Err(e) if explicit.is_some() => {
            return Err(anyhow::Error::new(e).context(format!("--weights {}", weights.display())))
        }
        // Not a readable checkpoint: the native path says why, with its own hints.
        Err(_) => return Ok(None),
    };
    let t = match explicit {
        Some(t) => t,
        None => match ligand::detect_model_type(&ckpt)? {
            Some(t) => t,
            None => {
                // A ProteinMPNN checkpoint: the native path uses this copy instead of reading it again.
                preload(&weights, ckpt);
                return Ok(None);
            }
        },
    };
    let model = LigandModel::from_checkpoint(&ckpt, &weights, Some(t), c.ligand.use_side_chain_context.on())?;
    Ok(Some(model))
}

/// Refuses options these models do not take.
fn refuse_native_only(c: &Common) -> Result<()> {
    let t = c.ligand.model_type.map_or("ligand_mpnn".to_string(), |t| t.to_string());
    let no = |flag: &str, why: &str| -> Result<()> { bail!("{flag} is not supported with the {t} model: {why}") };
    if c.ca_only {
        no("--ca_only", "LigandMPNN models read the full backbone")?;
    }
    if c.k.is_some() || c.precision.is_some() || c.preset.is_some() {
        no("--k / --precision / --preset", "LigandMPNN models run exact, at the checkpoint's k, in float32")?;
    }
    if c.device == mpnn::device::DeviceChoice::Gpu {
        no("--device gpu", "LigandMPNN models run on the CPU for now (leave --device at auto or cpu)")?;
    }
    if c.jsonl_path.is_some() {
        no("--jsonl_path", "give PDB or mmCIF files (LigandMPNN's parser reads the context atoms from them)")?;
    }
    if c.chain_id_jsonl.is_some() {
        no("--chain_id_jsonl", "name the designed chains with --chains")?;
    }
    if c.fixed_positions_jsonl.is_some() {
        no("--fixed_positions_jsonl", "name the fixed residues with --fixed (e.g. \"A10 B52A\")")?;
    }
    if c.use_soluble_model {
        no("--use_soluble_model", "give the soluble checkpoint with --weights and --model_type soluble_mpnn")?;
    }
    Ok(())
}

fn refuse_design_only(d: &DesignOpts) -> Result<()> {
    let no = |flag: &str, why: &str| -> Result<()> { bail!("{flag} is not supported with LigandMPNN models: {why}") };
    if d.backbone_noise != 0.0 {
        no("--backbone_noise", "drop it (LigandMPNN's run.py has no backbone noise)")?;
    }
    if d.pssm_jsonl.is_some() || d.pssm_multi != 0.0 {
        no("--pssm_jsonl / --pssm_multi", "use --bias-by-residue for per-residue preferences")?;
    }
    if d.screen.is_some() {
        no("--screen", "design with the model directly")?;
    }
    if d.bias_aa_jsonl.is_some() || d.bias_by_res_jsonl.is_some() || d.omit_aa_jsonl.is_some() {
        no(
            "--bias_AA_jsonl / --bias_by_res_jsonl / --omit_AA_jsonl",
            "use --bias, --bias-by-residue and --omit-by-residue (keys are residue ids such as \"B52A\")",
        )?;
    }
    if d.tied_positions_jsonl.is_some() {
        no("--tied_positions_jsonl", "use --tied \"A1,B1|A2,B2\" (residue ids) or --homo-oligomer")?;
    }
    if d.save_structures {
        no("--save-structures", "`mpnn ligandmpnn run` writes threaded backbones with the context atoms")?;
    }
    Ok(())
}

fn options(c: &Common) -> LigandOptions {
    let l = &c.ligand;
    LigandOptions {
        use_atom_context: l.use_atom_context.on(),
        cutoff_for_score: l.cutoff_for_score,
        side_chain_context: l.use_side_chain_context.on(),
        zero_occupancy: l.zero_occupancy.on(),
        transmembrane_buried: l.transmembrane_buried.clone(),
        transmembrane_interface: l.transmembrane_interface.clone(),
        global_transmembrane_label: l.global_transmembrane_label,
    }
}

fn read_json(flag: &str, path: &str) -> Result<(String, serde_json::Value)> {
    expect_path(flag, path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {path}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{flag}: {path} is not valid JSON"))?;
    if !v.is_object() {
        bail!("{flag}: {path} must hold a JSON object keyed by residue id, like {{\"B52A\": ...}}");
    }
    Ok((path.to_string(), v))
}

/// The residue selection of a run (chains and, for design, the inline specs).
fn selection(c: &Common, d: Option<&DesignOpts>) -> Result<LigandSelection> {
    let mut sel =
        LigandSelection { chains: c.chains.as_deref().map(parse_chain_list).unwrap_or_default(), ..Default::default() };
    if let Some(d) = d {
        let mut omit = spec::parse_letters(&d.omit_aas)
            .with_context(|| format!("--omit_AAs \"{}\": give letters of {}", d.omit_aas, alphabet::ALPHABET))?;
        if let Some(o) = &d.omit {
            omit.push_str(
                &spec::parse_letters(o)
                    .with_context(|| format!("--omit \"{o}\": give letters of {}", alphabet::ALPHABET))?,
            );
        }
        let mut letters: Vec<char> = omit.chars().collect();
        letters.sort();
        letters.dedup();
        if alphabet::ALPHABET.chars().take(20).all(|l| letters.contains(&l)) {
            bail!(
                "--omit_AAs/--omit \"{omit}\": every amino acid is omitted, so nothing could be sampled; leave at least \
                 one of {} allowed",
                &alphabet::ALPHABET[..20]
            );
        }
        sel.omit = letters.into_iter().collect();
        if let Some(b) = &d.bias {
            let parsed: spec::BiasSpec = b.parse().with_context(|| format!("--bias \"{b}\""))?;
            sel.bias = parsed.to_string();
        }
        sel.fixed = d.fixed.clone();
        sel.redesign = d.redesign.clone();
        sel.tied = d.tied.clone();
        sel.homo_oligomer = d.homo_oligomer;
        sel.bias_by_residue = d.bias_by_residue.as_deref().map(|p| read_json("--bias-by-residue", p)).transpose()?;
        sel.omit_by_residue = d.omit_by_residue.as_deref().map(|p| read_json("--omit-by-residue", p)).transpose()?;
    }
    Ok(sel)
}

/// A structure's file and what it was prepared into.
type Prepared = (PathBuf, LigandPrepared);

/// Every structure prepared (every one checked before any work); notes and warnings said on
/// stderr once per structure.
fn prepare_all(
    c: &Common,
    model: &LigandModel,
    sel: &LigandSelection,
    skip: &Skip,
    list: &Path,
    quiet: bool,
) -> Result<(Vec<Prepared>, Vec<Invalid>)> {
    let opts = options(c);
    let mut ok = Vec::new();
    let mut invalid = Vec::new();
    for (order, path) in structure_paths(c)?.into_iter().enumerate() {
        let source = Source { order, path: path.clone(), line: None };
        if path.to_string_lossy().to_lowercase().ends_with(".jsonl") {
            invalid.push(Invalid::new(
                &source,
                None,
                "parsed jsonl structures hold no context atoms; give PDB or mmCIF files with LigandMPNN models",
            ));
            continue;
        }
        match ligand::prepare(model, &path, sel, &opts) {
            Ok(p) if p.len() > c.max_length => {
                if !quiet {
                    eprintln!("skipping {}: {} residues is more than --max_length {}", p.name, p.len(), c.max_length);
                }
            }
            Ok(p) => ok.push((path, p)),
            Err(e) => invalid.push(Invalid::new(&source, None, e)),
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (path, p) in &ok {
        if let Some(first) = seen.insert(p.name.clone(), path.clone()) {
            bail!(
                "{} and {} are both named {}: their output files would overwrite each other; rename one of them",
                first.display(),
                path.display(),
                p.name
            );
        }
    }
    settle_invalid(&invalid, ok.len(), skip.skip_invalid, list)?;
    for (_, p) in &ok {
        for w in &p.warnings {
            eprintln!("warning: {w}");
        }
        if !quiet {
            for n in &p.notes {
                eprintln!("note: {n}");
            }
        }
    }
    Ok((ok, invalid))
}

fn say_model(model: &LigandModel, quiet: bool) {
    if !quiet {
        println!("Model: {} ({}), k = {}", model.name(), model.model_type(), model.num_edges());
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    structure::write_atomic(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// `mpnn design` with a LigandMPNN model.
pub fn design(c: &Common, d: &DesignOpts, skip: &Skip, model: LigandModel) -> Result<()> {
    init_threads(c)?;
    refuse_native_only(c)?;
    refuse_design_only(d)?;
    let quiet = c.suppress_print.on();
    let shard = shard_of_run(d.shard.as_deref(), quiet)?;
    passes(c)?;
    let per_temp = (c.num_seq_per_target / c.batch_size) * c.batch_size;
    let temperatures: Vec<f64> = d
        .sampling_temp
        .split_whitespace()
        .map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0))
        .collect::<Option<_>>()
        .filter(|v: &Vec<f64>| !v.is_empty())
        .with_context(|| {
            format!("--sampling_temp \"{}\": give positive temperatures like \"0.1 0.2\"", d.sampling_temp)
        })?;
    if let Some(t) = &d.table {
        let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "csv" && ext != "jsonl" {
            bail!("--table {}: the table file must end in .csv or .jsonl", t.display());
        }
    }
    let sel = selection(c, Some(d))?;
    let base = out_base(c)?;
    let list = base.join("skipped.tsv");
    say_model(&model, quiet);
    let (mut jobs, invalid) = prepare_all(c, &model, &sel, skip, &list, quiet)?;
    // The shard split: structure k of the name-sorted list goes to shard (k mod N) + 1.
    let sh = shard.unwrap_or(Shard { index: 1, count: 1 });
    jobs.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let names: Vec<String> = jobs.iter().map(|j| j.1.name.clone()).collect();
    let jobs: Vec<Prepared> = jobs.into_iter().enumerate().filter(|(k, _)| sh.takes(*k)).map(|(_, j)| j).collect();
    let seed = seed(c);
    // Resume: a complete seqs/NAME.fa whose record holds this run's parameters is skipped.
    let mut params = resume::Params::new();
    let mut put = |k: &str, v: String| {
        params.insert(k.to_string(), v);
    };
    put("--seed", if c.seed == 0 { "0 (random)".into() } else { c.seed.to_string() });
    put("--sampling_temp", temperatures.iter().map(|&t| resume::num(t)).collect::<Vec<_>>().join(" "));
    put("--num_seq_per_target (sequences per temperature)", per_temp.to_string());
    put("--model_type", model.model_type().to_string());
    put("weights (file content)", resume::file_hash(model.path())?);
    put("selection", format!("{sel:?}"));
    put("context", format!("{:?}", options(c)));
    put("--save_score", d.save_score.to_string());
    put("--save_probs", d.save_probs.to_string());
    let fasta_path = |name: &str| base.join("seqs").join(format!("{name}.fa"));
    let mut todo = Vec::new();
    let mut conflicts = Vec::new();
    for (k, (_, p)) in jobs.iter().enumerate() {
        let complete = std::fs::read_to_string(fasta_path(&p.name))
            .ok()
            .and_then(|t| output::parse_design_fasta(&t))
            .is_some_and(|(_, _, rows)| rows.len() == per_temp * temperatures.len());
        if !complete || d.overwrite {
            todo.push(k);
            continue;
        }
        match resume::read_record(&base, &p.name) {
            Some(old) if old == params => {
                if !quiet {
                    println!(
                        "Skipping {}: {} is complete, designed with the same parameters (pass --overwrite to redo it)",
                        p.name,
                        fasta_path(&p.name).display()
                    );
                }
            }
            Some(old) => conflicts.push(format!("  {}: {}", p.name, resume::diff(&old, &params).join("; "))),
            None => conflicts.push(format!("  {}: no record of the parameters that made it", p.name)),
        }
    }
    if !conflicts.is_empty() {
        bail!(
            "{}: these structures were already designed there with other parameters:\n{}\nPass --overwrite to redo \
             them, or write to another --out folder. Nothing was written.",
            base.display(),
            conflicts.join("\n")
        );
    }
    write_skip_list(&list, &invalid)?;
    // The run file `mpnn status` reads (every shard writes the same one).
    let hash = resume::params_hash(&params);
    resume::write_run_file(
        &base,
        &resume::RunFile {
            shards: sh.count,
            records: per_temp * temperatures.len(),
            structures: names
                .iter()
                .enumerate()
                .map(|(k, n)| resume::RunEntry { name: n.clone(), shard: k % sh.count + 1, params: hash.clone() })
                .collect(),
        },
    )?;
    for sub in ["seqs", resume::DIR]
        .iter()
        .chain(d.save_score.on().then_some(&"scores"))
        .chain(d.save_probs.on().then_some(&"probs"))
    {
        out_dir(c, sub)?;
    }
    let hash = format!("mpnn-{}", env!("CARGO_PKG_VERSION"));
    for &k in &todo {
        let (_, p) = &jobs[k];
        if !quiet {
            println!("Generating sequences for: {}", p.name);
        }
        let (designs, native) = ligand::design_with_native(&model, p, &temperatures, per_temp, seed)?;
        let l = p.len();
        let n = designs.len();
        if d.save_score.on() {
            let mut w = NpzWriter::new();
            w.f32("score", &[n], designs.iter().map(|x| x.score).collect()).f32(
                "global_score",
                &[n],
                designs.iter().map(|x| x.global_score).collect(),
            );
            write(&base.join("scores").join(format!("{}.npz", p.name)), &w.to_bytes()?)?;
        }
        if d.save_probs.on() {
            let mut w = NpzWriter::new();
            // The native layout [n, L, 21]: X (never drawn) gets 0.
            let probs21: Vec<f32> = designs
                .iter()
                .flat_map(|x| x.sampling_probs.chunks(20).flat_map(|r| r.iter().copied().chain([0.0])))
                .collect();
            w.f32("probs", &[n, l, 21], probs21)
                .f32("log_probs", &[n, l, 21], designs.iter().flat_map(|x| x.log_probs.iter().copied()).collect())
                .i32("S", &[n, l], designs.iter().flat_map(|x| x.s.iter().map(|&v| v as i32)).collect())
                .f32("mask", &[l], p.design_mask())
                .i64(
                    "decoding_order",
                    &[n, l],
                    designs.iter().flat_map(|x| x.decoding_order.iter().map(|&v| v as i64)).collect(),
                );
            write(&base.join("probs").join(format!("{}.npz", p.name)), &w.to_bytes()?)?;
        }
        resume::write_record(&base, &p.name, &params, seed, model.path())?;
        let fixed: Vec<String> = p.chains.iter().filter(|c| !p.designed_chains.contains(c)).cloned().collect();
        let mut text = output::native_record(
            &NativeHeader {
                name: &p.name,
                score: native.score,
                global_score: native.global_score,
                fixed_chains: &fixed,
                designed_chains: &p.designed_chains,
                ca_only: false,
                model_name: &model.name(),
                git_hash: &hash,
                seed,
            },
            &p.designed_sequence(&p.features.s),
        );
        let with_context = model.reads_context(&options(c)) && p.context_atoms > 0;
        for x in &designs {
            let mut record = output::sample_record(
                x.temperature,
                x.number,
                x.score,
                x.global_score,
                x.confidence.seq_rec,
                &p.designed_sequence(&x.s),
            );
            // LigandMPNN's confidences; ligand_confidence only where the model reads context atoms
            // and the structure has some.
            let mut extra = format!(", overall_confidence={}", output::np4(x.confidence.overall_confidence));
            if with_context {
                extra.push_str(&format!(", ligand_confidence={}", output::np4(x.confidence.ligand_confidence)));
            }
            let at = record.find('\n').unwrap_or(record.len());
            record.insert_str(at, &extra);
            text.push_str(&record);
        }
        write(&fasta_path(&p.name), text.as_bytes())?;
    }
    if let Some(t) = &d.table {
        let mut rows = Vec::new();
        for (_, p) in &jobs {
            let path = fasta_path(&p.name);
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("--table: cannot read {}", path.display()))?;
            let (_, _, samples) = output::parse_design_fasta(&text)
                .with_context(|| format!("--table: {} is not a complete design file", path.display()))?;
            rows.extend(samples.into_iter().map(|row| output::TableRow { structure: p.name.clone(), row }));
        }
        let jsonl = t.extension().and_then(|e| e.to_str()) == Some("jsonl");
        if let Some(dir) = t.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("--table: cannot create {}", dir.display()))?;
        }
        write(t, output::table_text(&rows, jsonl).as_bytes())?;
    }
    if !quiet {
        eprintln!(
            "designed {} sequences for {} structures with one {} model{}",
            todo.len() * per_temp * temperatures.len(),
            todo.len(),
            model.model_type(),
            if todo.len() < jobs.len() {
                format!("; {} already complete, skipped", jobs.len() - todo.len())
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// The sequence to score: the designed chains' letters (or all residues), written over the
/// native sequence from the first position, as the native `score` does.
fn parse_sequence(p: &LigandPrepared, seq: &str, origin: &str, what: &str) -> Result<Vec<u8>> {
    let designed = p.chain_ids.iter().filter(|c| p.designed_chains.contains(c)).count();
    let letters: Vec<char> = seq.chars().filter(|&c| c != '/').collect();
    if letters.len() != designed && letters.len() != p.len() {
        bail!(
            "{origin}: {what} has {} residues, but {} has {designed} designed residues ({} in all); give the designed \
             chains' sequence (chains in order {})",
            letters.len(),
            p.name,
            p.len(),
            p.designed_chains.join(", ")
        );
    }
    let mut s = p.features.s.clone();
    for (i, &ch) in letters.iter().enumerate() {
        s[i] = alphabet::index_of(ch.to_ascii_uppercase()).with_context(|| {
            format!("{origin}: {what} position {}: `{ch}` is not one of {}", i + 1, alphabet::ALPHABET)
        })?;
    }
    Ok(s)
}

/// `mpnn score` with a LigandMPNN model: OUT/score_only/NAME_TAG.npz (`score`, `global_score`,
/// `S`, `seq_str`, and `log_probs` [passes, L, 21]).
pub fn score(c: &Common, fasta: Option<&Path>, skip: &Skip, model: LigandModel) -> Result<()> {
    init_threads(c)?;
    refuse_native_only(c)?;
    let quiet = c.suppress_print.on();
    let n_passes = passes(c)?;
    let seed = seed(c);
    let records = fasta.map(super::score::read_fasta).transpose()?;
    let sel = selection(c, None)?;
    let dir = out_base(c)?.join("score_only");
    let list = dir.join("skipped.tsv");
    say_model(&model, quiet);
    let (jobs, invalid) = prepare_all(c, &model, &sel, skip, &list, quiet)?;
    let mut work = Vec::new();
    for (_, p) in &jobs {
        let mut seqs = vec![("pdb".to_string(), p.features.s.clone())];
        if let (Some(recs), Some(path)) = (&records, fasta) {
            for (i, (h, s)) in recs.iter().enumerate() {
                seqs.push((
                    format!("fasta_{}", i + 1),
                    parse_sequence(p, s, &path.display().to_string(), &format!("record `{h}`"))?,
                ));
            }
        }
        work.push(seqs);
    }
    let dir = out_dir(c, "score_only")?;
    write_skip_list(&list, &invalid)?;
    for ((_, p), seqs) in jobs.iter().zip(&work) {
        let all: Vec<Vec<u8>> = seqs.iter().map(|(_, s)| s.clone()).collect();
        let res = ligand::score(&model, p, &all, n_passes, seed)?;
        let l = p.len();
        for ((tag, s), passes) in seqs.iter().zip(res) {
            let score: Vec<f32> = passes.iter().map(|r| r.0.score).collect();
            let global: Vec<f32> = passes.iter().map(|r| r.0.global_score).collect();
            let mut w = NpzWriter::new();
            w.f32("score", &[score.len()], score.clone())
                .f32("global_score", &[global.len()], global.clone())
                .i64("S", &[l], s.iter().map(|&v| v as i64).collect())
                .strings("seq_str", &[], vec![p.designed_sequence(s).replace('/', "")])
                .f32("log_probs", &[passes.len(), l, 21], passes.iter().flat_map(|r| r.1.iter().copied()).collect());
            write(&dir.join(format!("{}_{tag}.npz", p.name)), &w.to_bytes()?)?;
            if !quiet {
                let (m, sd) = mean_std(&score);
                let (gm, gsd) = mean_std(&global);
                let from = if tag == "pdb" {
                    " from PDB".to_string()
                } else {
                    format!("{} from FASTA", tag.replace("fasta_", "-"))
                };
                println!(
                    "Score for {}{from}, mean: {}, std: {}, sample size: {},  global score, mean: {}, std: {}, sample \
                     size: {}",
                    p.name,
                    fmt4(m),
                    fmt4(sd),
                    score.len(),
                    fmt4(gm),
                    fmt4(gsd),
                    global.len()
                );
            }
        }
    }
    Ok(())
}

/// `mpnn probs` with a LigandMPNN model: OUT/{unconditional,conditional}_probs_only/NAME.npz
/// (`log_p` [passes, L, 21], `S`, `mask`, `design_mask`).
pub fn probs(c: &Common, kind: super::probs::Kind, skip: &Skip, model: LigandModel) -> Result<()> {
    init_threads(c)?;
    refuse_native_only(c)?;
    let quiet = c.suppress_print.on();
    let n_passes = passes(c)?;
    let seed = seed(c);
    let sel = selection(c, None)?;
    let (sub, which) = match kind {
        super::probs::Kind::Unconditional => ("unconditional_probs_only", ProbsKind::Unconditional),
        super::probs::Kind::Conditional { backbone_only: false } => ("conditional_probs_only", ProbsKind::Conditional),
        super::probs::Kind::Conditional { backbone_only: true } => ("conditional_probs_only", ProbsKind::BackboneOnly),
    };
    let list = out_base(c)?.join(sub).join("skipped.tsv");
    say_model(&model, quiet);
    let (jobs, invalid) = prepare_all(c, &model, &sel, skip, &list, quiet)?;
    let dir = out_dir(c, sub)?;
    write_skip_list(&list, &invalid)?;
    for (_, p) in &jobs {
        if !quiet {
            println!(
                "Calculating {} probabilities for {}",
                if sub.starts_with("un") { "unconditional" } else { "conditional" },
                p.name
            );
        }
        let l = p.len();
        let log_p = ligand::probs(&model, p, n_passes, seed, which)?;
        let mut w = NpzWriter::new();
        w.f32("log_p", &[n_passes, l, 21], log_p.concat())
            .i64("S", &[l], p.features.s.iter().map(|&v| v as i64).collect())
            .f32("mask", &[l], p.features.mask.clone())
            .f32("design_mask", &[l], p.design_mask());
        write(&dir.join(format!("{}.npz", p.name)), &w.to_bytes()?)?;
    }
    Ok(())
}

/// The native ProteinMPNN path: a warning when the structure at `path` (PDB / mmCIF) has context
/// atoms within `--ligand_mpnn_cutoff_for_score` of residues of the designed chains, which
/// ProteinMPNN ignores. Files LigandMPNN's parser cannot read say nothing here.
pub fn warn_ignored_context(c: &Common, path: &Path, designed_chains: &[String]) {
    let lower = path.to_string_lossy().to_lowercase();
    if lower.ends_with(".jsonl") {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else { return };
    let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let Ok(data) = structure::read::decompress_if_gzip(&file, &bytes) else { return };
    // Most design inputs (backbones) hold protein only: skip the full parse (3-4x the native one).
    if !mpnn::ligand::parse::may_have_context(&file, &data) {
        return;
    }
    let opts = mpnn::ligand::parse::ParseOptions { chains: Vec::new(), parse_atoms_with_zero_occupancy: false };
    let Ok(st) = mpnn::ligand::parse::parse_ligand_structure(&file, &data, &opts) else { return };
    let designed: Vec<f32> =
        st.ids.iter().map(|id| if designed_chains.contains(&id.chain) { 1.0 } else { 0.0 }).collect();
    let (_, warnings) =
        ligand::context_messages(&st, &designed, false, "this ProteinMPNN model", c.ligand.cutoff_for_score);
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
