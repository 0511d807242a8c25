//! `mpnn design` and the official default job: the command line around [`mpnn::job::design`]
//! (arguments, official dictionaries and inline specs, many structures per run, sharding,
//! resume, and the output files).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mpnn::alphabet::{self, VOCAB};
use mpnn::featurize::Features;
use mpnn::inputs::{self, Dictionaries};
use mpnn::job::{self, Design, DesignOptions, Designs, Labels, ResidueConstraints};
use mpnn::npz::NpzWriter;
use mpnn::output::{self, NativeHeader, TableRow};
use mpnn::pipeline::Scores;
use mpnn::preset::Preset;
use mpnn::spec::{self, BiasSpec, ResidueItem, ResidueSpec, Shard, TiedSpec};
use mpnn::structure::{self, Protein};

use super::args::{Common, DesignOpts, Skip};
use super::common::*;
use super::resume;

/// Inline options, parsed before any input is read.
struct Inline {
    temperatures: Vec<f64>,
    bias: Option<BiasSpec>,
    omit: String,
    /// --fixed, --redesign, --tied, --homo-oligomer, --bias-by-residue, --omit-by-residue.
    residue: ResidueConstraints,
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
        None => Vec::new(),
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
            out
        }
    };
    let omit_by_residue = match &d.omit_by_residue {
        None => Vec::new(),
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
            out
        }
    };
    Ok(Inline {
        temperatures: parse_temperatures(&d.sampling_temp)?,
        residue: ResidueConstraints {
            fixed: spec("--fixed", &d.fixed)?,
            redesign: spec("--redesign", &d.redesign)?,
            tied: d
                .tied
                .as_deref()
                .map(|s| s.parse::<TiedSpec>().with_context(|| format!("--tied \"{s}\": not a tied spec")))
                .transpose()?,
            homo_oligomer: d.homo_oligomer,
            bias_by_residue,
            omit_by_residue,
            labels: Labels::CLI,
        },
        bias: d
            .bias
            .as_deref()
            .map(|s| s.parse::<BiasSpec>().with_context(|| format!("--bias \"{s}\"")))
            .transpose()?,
        omit,
    })
}

/// One structure to design.
struct Job {
    protein: Protein,
    source: PathBuf,
    features: Features,
}

/// How `mpnn` was asked to design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `mpnn design`: resumes what the same parameters made.
    Subcommand,
    /// The official flags: always redoes every structure, like the official script.
    Official,
}

/// Which structures to design: (to do, already complete). A complete seqs/NAME.fa whose record
/// holds this run's parameters is skipped (a file short of records was damaged and is redone);
/// one made with other parameters, or with none recorded, stops the run unless `overwrite`.
fn plan_resume(
    jobs: &[Job],
    base: &Path,
    overwrite: bool,
    expected_records: usize,
    params_of: &dyn Fn(&Features) -> Option<resume::Params>,
    quiet: bool,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let fasta_path = |name: &str| base.join("seqs").join(format!("{name}.fa"));
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
        match resume::read_record(base, name) {
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
                resume::record_path(base, name).display()
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
    Ok((todo, skipped))
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
/// threaded structures, parameter record, and the temporary files of a write that was
/// interrupted, e.g. by a killed cluster task), so no output of it outlives this run's.
fn clear_previous(base: &Path, name: &str) -> Result<()> {
    for (dir, file) in [
        ("seqs", format!("{name}.fa")),
        (resume::DIR, format!("{name}.json")),
        ("scores", format!("{name}.npz")),
        ("probs", format!("{name}.npz")),
    ] {
        resume::remove_if_exists(&base.join(dir).join(&file))?;
        resume::remove_temporaries(&base.join(dir), &file)?;
    }
    let dir = base.join("structures");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let prefix = format!("{name}_sample_");
        let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let numbered = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".pdb")).is_some_and(digits);
            // `.NAME_sample_N.pdb.tmp-PID`
            let temporary = file
                .strip_prefix('.')
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|r| r.split_once(".pdb.tmp-"))
                .is_some_and(|(n, pid)| digits(n) && digits(pid));
            if numbered || temporary {
                resume::remove_if_exists(&e.path())?;
            }
        }
    }
    Ok(())
}

/// The official dictionaries of the run and the design options (temperatures, seed, noise,
/// omitted letters, `--bias` added to `--bias_AA_jsonl`, PSSM options), checked.
fn design_options(c: &Common, d: &DesignOpts, inl: &Inline, per_temp: usize) -> Result<(Dictionaries, DesignOptions)> {
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
    let opts = DesignOptions {
        temperatures: inl.temperatures.clone(),
        per_temperature: per_temp,
        seed: seed(c),
        backbone_noise: d.backbone_noise,
        omit: inl.omit.clone(),
        bias_aa,
        pssm_multi: d.pssm_multi,
        pssm_threshold: d.pssm_threshold,
        pssm_log_odds: d.pssm_log_odds_flag.on(),
        pssm_bias: d.pssm_bias_flag.on(),
        labels: Labels::CLI,
    };
    opts.validate()?;
    Ok((dicts, opts))
}

pub fn run(c: &Common, d: &DesignOpts, skip: &Skip, mode: Mode) -> Result<()> {
    init_threads(c)?;
    let quiet = c.suppress_print.on();
    let inl = parse_inline(d)?;
    let shard = shard_of_run(d.shard.as_deref(), quiet)?;
    passes(c)?;
    let num_batches = c.num_seq_per_target / c.batch_size;
    let per_temp = num_batches * c.batch_size;
    job::check_backbone_noise(d.backbone_noise, &Labels::CLI)?;
    let (dicts, opts) = design_options(c, d, &inl, per_temp)?;
    let bias_aa = opts.bias_aa;

    // Structures and their features: every check first, for every structure (also those of
    // other shards, so every shard agrees on what is invalid and on the shard split).
    let mut inputs = read_inputs(c, quiet)?;
    let prepared = inputs.prepare_each(|input| {
        let p = &input.protein;
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        Ok(job::prepare(p, &sel, dicts.constraints(&p.name)?, &inl.residue, &inl.omit, c.ca_only)?)
    });
    for (input, f) in &prepared {
        super::native_ligand::warn_ignored_context(c, &input.source.path, &f.masked_chains);
    }
    let base = out_base(c)?;
    let fasta_path = |name: &str| base.join("seqs").join(format!("{name}.fa"));
    check_unique_names(prepared.iter().map(|(i, _)| (i.protein.name.as_str(), &i.source)), fasta_path)?;
    let skip_list = base.join("skipped.tsv");
    settle_invalid(&inputs.invalid, prepared.len(), skip.skip_invalid, &skip_list)?;
    let mut prepared: Vec<(Input, Features)> = prepared;
    // The shard split: structure k of the name-sorted list goes to shard (k mod N) + 1. Every
    // structure's shard and own parameters go into the run file (`mpnn status` reads it).
    let sh = shard.unwrap_or(Shard { index: 1, count: 1 });
    let mut idx: Vec<usize> = (0..prepared.len()).collect();
    idx.sort_by(|&a, &b| prepared[a].0.protein.name.cmp(&prepared[b].0.protein.name).then(a.cmp(&b)));
    let mut take = vec![false; prepared.len()];
    let mut split = Vec::with_capacity(prepared.len());
    for (k, &i) in idx.iter().enumerate() {
        take[i] = sh.takes(k);
        let f = &prepared[i].1;
        split.push((f.name.clone(), k % sh.count + 1, resume::structure_params(f)));
    }
    let mut it = take.into_iter();
    prepared.retain(|_| it.next().unwrap());
    let jobs: Vec<Job> = prepared
        .into_iter()
        .map(|(input, f)| Job { protein: input.protein, source: input.source.path, features: f })
        .collect();
    if let Some(t) = &d.table {
        let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "csv" && ext != "jsonl" {
            bail!("--table {}: the table file must end in .csv or .jsonl", t.display());
        }
    }

    // Cascade screening: checked before any work.
    let generated = opts.generated();
    if let (Some(p), Some(keep)) = (d.screen, d.keep) {
        job::check_screen(keep, &opts)?;
        if p.needs_pruned() && d.screen_weights.is_none() {
            bail!("--screen {p} runs a pruned checkpoint; pass it with --screen-weights FILE (or screen with fast or balanced)");
        }
    }
    // Resume: a complete seqs/NAME.fa whose record holds this run's parameters is done; one
    // made with other parameters (or with none recorded) stops the run unless --overwrite. The
    // official flags always redo everything, like the official script.
    let official = mode == Mode::Official;
    let overwrite = d.overwrite || official;
    // (No structure to design, no weights needed; but every shard of `mpnn design` records
    // the parameters of every structure in the run file.)
    let weights = if jobs.is_empty() && (official || split.is_empty()) { PathBuf::new() } else { weights_path(c)? };
    let run_params = match official || split.is_empty() {
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
    let (todo, skipped) = plan_resume(&jobs, &base, overwrite, expected_records, &params_of, quiet)?;
    write_skip_list(&skip_list, &inputs.invalid)?;
    if let Some(g) = &run_params {
        let structures = split
            .into_iter()
            .map(|(name, shard, sp)| {
                let mut p = g.clone();
                p.extend(sp);
                resume::RunEntry { name, shard, params: resume::params_hash(&p) }
            })
            .collect();
        resume::write_run_file(&base, &resume::RunFile { shards: sh.count, records: expected_records, structures })?;
    }

    let seed = opts.seed;
    let t_start = Instant::now();
    let mut n_seqs = 0usize;
    let mut n_res = 0usize;
    if !todo.is_empty() {
        let raw = load_model(c, Some(&weights), quiet)?;
        let model = configure(&raw, c.preset, c.k, c.precision)?;
        let precision = model.engine().model.precision;
        let model = model.on_device(&device_for(c.device, precision, quiet)?);
        let screen = match d.screen {
            None => None,
            Some(p) => {
                let base = match &d.screen_weights {
                    Some(w) => load_model(c, Some(w), true)?,
                    None => raw,
                };
                Some(configure(&base, Some(p), None, None)?)
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
        // On a GPU, up to 64 structures are designed together (their samples share command
        // buffers, `job::design_many`); the results are those of one at a time.
        let group = if screen.is_none() && model.engine().on_gpu() { 64 } else { 1 };
        for chunk in todo.chunks(group) {
            bar.set_message(jobs[chunk[0]].features.name.clone());
            if !quiet {
                for &k in chunk {
                    bar.suspend(|| println!("Generating sequences for: {}", jobs[k].features.name));
                }
            }
            let t0 = Instant::now();
            let progress = |n: usize| bar.inc(n as u64);
            let results: Vec<Designs> = match (&screen, d.keep) {
                (Some(sm), Some(keep)) => {
                    vec![job::design_screened(&model, sm, keep, &jobs[chunk[0]].features, &opts, &progress)?]
                }
                _ => {
                    let fs: Vec<&Features> = chunk.iter().map(|&k| &jobs[k].features).collect();
                    job::design_many(&model, &fs, &opts, &progress)?
                }
            };
            // Per structure: the group's time shared evenly.
            let dt = t0.elapsed().as_secs_f64() / chunk.len() as f64;
            for (&k, Designs { native, designs }) in chunk.iter().zip(results) {
                let job = &jobs[k];
                let f = &job.features;
                // The previous outputs go first (so none outlives this run's), then the record,
                // then the new outputs with the FASTA last: an interruption never leaves a
                // complete FASTA with a record that does not match it.
                clear_previous(&base, &f.name)?;
                if let Some(p) = params_of(f) {
                    resume::write_record(&base, &f.name, &p, seed, &weights)?;
                }
                write_outputs(c, d, &base, job, &designs, seed, native, &model.name())?;
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

/// Writes one structure's outputs: scores, probabilities and threaded structures when asked
/// for, and the FASTA last (a complete FASTA marks the structure as done).
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    c: &Common,
    d: &DesignOpts,
    base: &Path,
    job: &Job,
    designs: &[Design],
    seed: u64,
    native: Scores,
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
            designs.iter().map(|x| x.global_score).collect(),
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
                output::python_float(x.temperature),
                x.number,
                output::np4(x.score),
                output::np4(x.global_score)
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
            score: native.score,
            global_score: native.global_score,
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
            x.temperature,
            x.number,
            x.score,
            x.global_score,
            x.recovery,
            &x.designed_sequence(f),
        );
        if let Some(Scores { score: s, global_score: g }) = x.screen {
            // `>T=..., seq_recovery=R` + the screening model's scores.
            let at = record.find('\n').unwrap_or(record.len());
            record
                .insert_str(at, &format!(", screen_score={}, screen_global_score={}", output::np4(s), output::np4(g)));
        }
        text.push_str(&record);
    }
    write(base.join("seqs").join(format!("{name}.fa")), text.as_bytes())
}
