//! `mpnn eval`: accuracy and speed of every preset × precision against a reference
//! configuration, on the user's structures (see [`mpnn::eval`] for what is measured).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mpnn::eval::{self, Config, Options};
use mpnn::featurize::featurize;
use mpnn::job::Model;
use mpnn::kernels::precision::Precision;
use mpnn::pipeline::Engine;
use mpnn::preset::{self, Preset};
use mpnn::structure;

use super::args::Common;
use super::common::*;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mpnn eval ../shared/parity/structures/{5L33,6MRR,3HTN,4YOW}.pdb --weights full_k48.pt \\\n      \
    --pruned-weights small_h64_l2_k16.pt --json eval.json --plot eval.svg\n  \
    mpnn eval designs/ --model_name v_48_020 --presets baseline,fast --precisions f32,int8")]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// Presets to measure, comma separated, or "all" (pruned ones need --pruned-weights and are
    /// skipped without it). --preset/--k/--precision add one more, custom configuration.
    #[arg(long, default_value = "all", value_name = "LIST")]
    pub presets: String,
    /// Precisions each preset is measured at, comma separated.
    #[arg(long, default_value = "f32,bf16,f16,int8", value_name = "LIST")]
    pub precisions: String,
    /// A pruned checkpoint (e.g. 2 + 2 layers, hidden 64) for minimal, minimal-fast, ultimate
    /// and extreme.
    #[arg(long = "pruned-weights", value_name = "FILE")]
    pub pruned_weights: Option<PathBuf>,
    /// What each configuration is compared with: "own" (its checkpoint at its own k in f32) or
    /// a preset name (that preset in f32, for every configuration; e.g. "baseline" to compare
    /// pruned models with the full one — meaningful with trained weights only).
    #[arg(long, default_value = "own", value_name = "own|PRESET")]
    pub reference: String,
    /// Sequences designed per structure and configuration for designed recovery (0: skip).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub designs: usize,
    /// Sampling temperature of those designs.
    #[arg(long, default_value_t = 0.1, value_name = "T")]
    pub temperature: f32,
    /// Timed repeats of each scoring measurement (the median is kept).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeats: usize,
    /// Write the table as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the accuracy-against-speed plot here (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

fn parse_list<T>(flag: &str, s: &str, all: &[T]) -> Result<Vec<T>>
where
    T: std::str::FromStr + Clone,
    T::Err: std::fmt::Display,
{
    if s.trim() == "all" {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        out.push(item.parse::<T>().map_err(|e| anyhow::anyhow!("{flag}: {e}"))?);
    }
    if out.is_empty() {
        bail!("{flag} is empty; give a comma-separated list or \"all\"");
    }
    Ok(out)
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

pub fn run(a: &EvalArgs) -> Result<()> {
    let c = &a.common;
    init_threads(c)?;
    let quiet = c.suppress_print.on();
    let presets = parse_list("--presets", &a.presets, &Preset::ALL)?;
    let precisions = parse_list("--precisions", &a.precisions, &Precision::ALL)?;
    if let Some(p) = &a.plot {
        if p.extension().and_then(|e| e.to_str()) != Some("svg") {
            bail!("--plot {}: the plot is written as SVG; give a file ending in .svg", p.display());
        }
    }
    if a.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if !(a.temperature > 0.0 && a.temperature.is_finite()) {
        bail!("--temperature {} must be a positive number", a.temperature);
    }
    // Structures and their features, all checked before any model runs.
    let proteins = read_proteins(c, quiet)?;
    let dicts = dictionaries(c)?;
    let mut feats = Vec::new();
    for p in &proteins {
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        feats.push(featurize(p, &sel, &dicts.constraints(&p.name)?, c.ca_only)?);
    }
    let main = load_model(c, None, true)?;
    let main_path = main.path().to_path_buf();
    let pruned = match &a.pruned_weights {
        Some(p) => {
            if !p.is_file() {
                bail!("--pruned-weights {}: no such file; give the pruned checkpoint's path", p.display());
            }
            let e = load_model(c, Some(p), true)?;
            let path = e.path().to_path_buf();
            if !preset::is_pruned(&e.engine().arch()) {
                bail!(
                    "--pruned-weights {}: this is the full architecture (3 + 3 layers, hidden {}), not a pruned checkpoint",
                    p.display(),
                    e.engine().arch().hidden
                );
            }
            Some((e, path))
        }
        None => None,
    };
    let main_is_pruned = preset::is_pruned(&main.engine().arch());
    // The checkpoint a preset runs: the main one if it is of the preset's kind, else the pruned one.
    let pick = |p: Preset| -> Option<(&Model, &PathBuf)> {
        if p.needs_pruned() == main_is_pruned {
            Some((&main, &main_path))
        } else {
            pruned.as_ref().filter(|_| p.needs_pruned()).map(|(e, path)| (e, path))
        }
    };

    // References: "own" = each checkpoint at its own k in f32; otherwise one preset in f32.
    let mut references: Vec<Engine> = Vec::new();
    let mut reference_names: Vec<String> = Vec::new();
    let mut reference_of_checkpoint: Vec<(PathBuf, usize)> = Vec::new();
    let fixed_reference = if a.reference == "own" {
        None
    } else {
        let p: Preset = a.reference.parse().map_err(|e| anyhow::anyhow!("--reference: {e}"))?;
        let Some((e, path)) = pick(p) else {
            bail!("--reference {p}: that preset needs a {} checkpoint; pass one with --pruned-weights", kind(p));
        };
        references.push(e.engine().with_options(p.k(), Precision::F32));
        reference_names.push(format!("{p}/f32 ({})", file_name(path)));
        Some(0)
    };
    let mut reference_for = |e: &Model, path: &PathBuf| -> usize {
        if let Some(r) = fixed_reference {
            return r;
        }
        if let Some((_, r)) = reference_of_checkpoint.iter().find(|(p, _)| p == path) {
            return *r;
        }
        references.push(e.engine().with_options(None, Precision::F32));
        reference_names.push(format!("{} at k {} f32", file_name(path), e.engine().arch().k));
        reference_of_checkpoint.push((path.clone(), references.len() - 1));
        references.len() - 1
    };
    // The main checkpoint's own reference first, so it is every speed-up's denominator.
    reference_for(&main, &main_path);

    let mut configs = Vec::new();
    let mut skipped = Vec::new();
    for &p in &presets {
        let Some((e, path)) = pick(p) else {
            skipped.push(format!(
                "{p} (needs a {} checkpoint{})",
                kind(p),
                if p.needs_pruned() { "; pass --pruned-weights" } else { "" }
            ));
            continue;
        };
        let r = reference_for(e, path);
        for &prec in &precisions {
            configs.push(Config {
                name: format!("{p}/{prec}"),
                preset: p.to_string(),
                checkpoint: file_name(path),
                engine: e.engine().with_options(p.k(), prec),
                batch: p.batch(),
                reference: r,
            });
        }
    }
    if c.preset.is_some() || c.k.is_some() || c.precision.is_some() {
        let p = c.preset.unwrap_or(Preset::Baseline);
        let Some((e, path)) = pick(p) else {
            bail!("--preset {p}: needs a {} checkpoint", kind(p));
        };
        let r = reference_for(e, path);
        let engine = configure(e, Some(p), c.k, c.precision)?.engine().clone();
        configs.push(Config {
            name: format!("custom ({p}, k {}, {})", engine.arch().k, engine.model.precision),
            preset: "custom".into(),
            checkpoint: file_name(path),
            batch: p.batch(),
            engine,
            reference: r,
        });
    }
    if configs.is_empty() {
        bail!(
            "nothing to measure: every requested preset needs a checkpoint that was not given ({})",
            skipped.join(", ")
        );
    }
    if !quiet {
        for s in &skipped {
            eprintln!("skipping preset {s}");
        }
        eprintln!("measuring {} configurations on {} structures", configs.len(), feats.len());
    }
    let seed = if c.seed == 0 { 37 } else { c.seed };
    let opts = Options { seed, designs: a.designs, temperature: a.temperature, repeats: a.repeats };
    let rows = eval::evaluate(&configs, &references, &reference_names, &feats, &opts, |cfg, s| {
        if !quiet {
            eprintln!("  {cfg}: {s}");
        }
    });
    print!("{}", eval::markdown(&rows));
    if let Some(j) = &a.json {
        let doc = serde_json::json!({
            "structures": feats.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            "seed": seed,
            "designs": a.designs,
            "temperature": a.temperature,
            "threads": rayon::current_num_threads(),
            "references": reference_names,
            "skipped": skipped,
            "rows": rows,
        });
        let text = serde_json::to_string_pretty(&doc)? + "\n";
        structure::write_atomic(j, text.as_bytes()).with_context(|| format!("--json: cannot write {}", j.display()))?;
    }
    if let Some(p) = &a.plot {
        let title = format!("mpnn eval: {} structures, {} threads", feats.len(), rayon::current_num_threads());
        structure::write_atomic(p, eval::svg_plot(&rows, &title).as_bytes())
            .with_context(|| format!("--plot: cannot write {}", p.display()))?;
    }
    Ok(())
}

fn kind(p: Preset) -> &'static str {
    if p.needs_pruned() {
        "pruned"
    } else {
        "full-architecture"
    }
}
