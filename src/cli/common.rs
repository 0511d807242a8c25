//! What every job does first: threads, inputs, chain selection, the model, the seed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mpnn::checkpoint::{self, locate};
use mpnn::featurize::ChainSelection;
use mpnn::inputs::{self, Dictionaries};
use mpnn::kernels::precision::Precision;
use mpnn::pipeline::Engine;
use mpnn::preset::Preset;
use mpnn::structure::{self, Protein};

use super::args::Common;

/// Structure file endings picked up from directories.
const STRUCTURE_ENDINGS: [&str; 9] =
    [".pdb", ".pdb.gz", ".ent", ".ent.gz", ".cif", ".cif.gz", ".mmcif", ".mmcif.gz", ".jsonl"];

/// Refuses inline JSON where a path is expected (the official script silently ignores it).
pub fn expect_path(flag: &str, value: &str) -> Result<()> {
    Ok(inputs::expect_path(flag, value)?)
}

/// Every structure file named by the inputs (files, directories, globs), in a stable order.
pub fn structure_paths(c: &Common) -> Result<Vec<PathBuf>> {
    let mut inputs: Vec<String> = c.structures.clone();
    if let Some(p) = &c.pdb_path {
        if !p.is_empty() {
            inputs.push(p.clone());
        }
    }
    if let Some(p) = &c.jsonl_path {
        if !p.is_empty() {
            inputs.push(p.clone());
        }
    }
    if let Some(list) = &c.list {
        expect_path("--list", &list.to_string_lossy())?;
        let text = std::fs::read_to_string(list).with_context(|| format!("--list: cannot read {}", list.display()))?;
        let base = list.parent().unwrap_or(Path::new("."));
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let p = Path::new(line);
            inputs.push(if p.is_absolute() || p.exists() {
                line.to_string()
            } else {
                base.join(p).display().to_string()
            });
        }
    }
    if inputs.is_empty() {
        bail!("no structures given: pass PDB/mmCIF/jsonl files or folders (or --pdb_path FILE / --jsonl_path FILE)");
    }
    let mut out = Vec::new();
    for input in inputs {
        expect_path("a structure input", &input)?;
        let p = PathBuf::from(&input);
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .with_context(|| format!("{}: cannot list the folder", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    let n = f.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
                    f.is_file() && STRUCTURE_ENDINGS.iter().any(|e| n.ends_with(e))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{}: the folder holds no structure files ({})", p.display(), STRUCTURE_ENDINGS.join(" "));
            }
            out.extend(found);
        } else if p.exists() {
            out.push(p);
        } else if input.contains(['*', '?', '[']) {
            let mut found: Vec<PathBuf> = glob::glob(&input)
                .with_context(|| format!("{input}: not a valid glob pattern"))?
                .filter_map(|r| r.ok())
                .filter(|f| f.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{input}: the pattern matches no files");
            }
            out.extend(found);
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

/// Reads every structure, skipping (with a note) those longer than `--max_length`.
pub fn read_proteins(c: &Common, quiet: bool) -> Result<Vec<Protein>> {
    let mut proteins = Vec::new();
    for path in structure_paths(c)? {
        let read = structure::read_path(&path).map_err(anyhow::Error::new)?;
        for p in read {
            if p.len() > c.max_length {
                if !quiet {
                    eprintln!("skipping {}: {} residues is more than --max_length {}", p.name, p.len(), c.max_length);
                }
                continue;
            }
            p.validate(c.ca_only).map_err(anyhow::Error::new)?;
            proteins.push(p);
        }
    }
    Ok(proteins)
}

/// The official dictionaries named by the flags.
pub fn dictionaries(c: &Common) -> Result<Dictionaries> {
    let read =
        |flag: &str, v: &Option<String>| -> Result<Option<(String, serde_json::Map<String, serde_json::Value>)>> {
            match v.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => Ok(Some((path.to_string(), inputs::read_dict_file(flag, path)?))),
                None => Ok(None),
            }
        };
    Ok(Dictionaries {
        chain_id: read("--chain_id_jsonl", &c.chain_id_jsonl)?,
        fixed_positions: read("--fixed_positions_jsonl", &c.fixed_positions_jsonl)?,
        ..Default::default()
    })
}

/// Parses "A,C", "A C" or "A, C" into chain ids.
pub fn parse_chain_list(s: &str) -> Vec<String> {
    s.split([',', ' ']).map(|t| t.trim()).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// The designed/fixed chains of `p`: the chain dictionary's entry, else `--chains`, else all.
/// Every chain the dictionaries name for `p` must be one of its chains.
pub fn selection_for(p: &Protein, chains: Option<&str>, dicts: &Dictionaries) -> Result<ChainSelection> {
    dicts.check_chains(&p.name, &p.chain_ids())?;
    if let Some(sel) = dicts.chain_selection(&p.name)? {
        return Ok(sel);
    }
    match chains.map(parse_chain_list).filter(|v| !v.is_empty()) {
        Some(designed) => {
            for c in &designed {
                if p.chain(c).is_none() {
                    bail!(
                        "{}: chain `{c}` is not in the structure (its chains are: {}); fix --chains",
                        p.name,
                        p.chain_ids().join(", ")
                    );
                }
            }
            Ok(ChainSelection::designing(p, &designed))
        }
        None => Ok(ChainSelection::all(p)),
    }
}

/// Loads the model the flags ask for.
pub fn load_engine(c: &Common, quiet: bool) -> Result<Engine> {
    let (engine, path) = load_checkpoint(c, None, quiet)?;
    configure(engine, &path, c.preset, c.k, c.precision)
}

/// Loads the checkpoint the weight flags of `c` name (or `explicit`, when given) at its own k
/// in f32; returns the engine and the file it came from.
pub fn load_checkpoint(c: &Common, explicit: Option<&Path>, quiet: bool) -> Result<(Engine, PathBuf)> {
    if let Some(p) = &c.path_to_model_weights {
        expect_path("--path_to_model_weights", &p.to_string_lossy())?;
    }
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let query = locate::WeightsQuery {
                path: c.weights.clone(),
                folder: c.path_to_model_weights.clone(),
                model_name: c.model_name.clone(),
                ca_only: c.ca_only,
                soluble: c.use_soluble_model,
                offline: c.offline,
            };
            locate::resolve(&query).map_err(anyhow::Error::new)?
        }
    };
    let ckpt = checkpoint::load(&path).map_err(anyhow::Error::new)?;
    let arch = ckpt.architecture().map_err(anyhow::Error::new)?;
    if arch.ca_only != c.ca_only {
        if arch.ca_only {
            bail!("{}: this is a CA-only checkpoint; add --ca_only", path.display());
        } else {
            bail!(
                "{}: this is a full-backbone checkpoint but --ca_only was given; drop --ca_only or use CA-only weights",
                path.display()
            );
        }
    }
    if !quiet {
        println!("Number of edges: {}", ckpt.num_edges);
        println!("Training noise level: {}A", ckpt.noise_level);
    }
    Ok((Engine::new(&ckpt, arch).map_err(anyhow::Error::new)?, path))
}

/// The name the FASTA headers give a checkpoint: its file name without the extension, like the
/// official `model_name=` (which is the `--model_name` the file was found by): `v_48_020` for
/// the official weights, `full_k48` for `--weights full_k48.safetensors`.
pub fn checkpoint_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Applies a preset and the explicit `--k` / `--precision` (which win over the preset's) to an
/// engine loaded from `source`, warning about every approximation.
pub fn configure(
    engine: Engine,
    source: &Path,
    preset: Option<Preset>,
    k: Option<usize>,
    precision: Option<Precision>,
) -> Result<Engine> {
    let arch = engine.arch();
    if let Some(p) = preset {
        p.check(&arch, &source.display().to_string()).map_err(anyhow::Error::new)?;
    }
    let explicit_k = k.is_some();
    let k = k.or(preset.and_then(Preset::k));
    let precision = precision.or(preset.map(Preset::precision)).unwrap_or_default();
    if k == Some(0) {
        bail!("--k must be at least 1");
    }
    if let Some(k) = k.filter(|&k| k != arch.k) {
        let what = if k < arch.k { "fewer" } else { "more" };
        let from = match (explicit_k, preset) {
            (false, Some(p)) => format!("--preset {p} runs k = {k}"),
            _ => format!("--k {k}"),
        };
        eprintln!(
            "warning: {from}: {what} neighbours than the {} this checkpoint was trained with; the results approximate \
             the model (the official code divides message sums by a fixed 30, not by k); `mpnn eval` measures the cost",
            arch.k
        );
    }
    if precision != Precision::F32 {
        eprintln!(
            "warning: --precision {precision}: the dense layers run in {precision}, an approximation of the float32 \
             model (coordinates, neighbours and RBFs stay float32); `mpnn eval` measures the cost"
        );
    }
    Ok(engine.with_options(k, precision))
}

/// The run's seed: the given one, or (0) a random one in 0..999 like the official script.
pub fn seed(c: &Common) -> u64 {
    if c.seed != 0 {
        return c.seed;
    }
    use rand::Rng;
    rand::thread_rng().gen_range(0..999)
}

/// Sets the global thread pool.
pub fn init_threads(c: &Common) -> Result<()> {
    if let Some(n) = c.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
    Ok(())
}

/// Output folder (created), from --out / --out_folder.
pub fn out_dir(c: &Common, sub: &str) -> Result<PathBuf> {
    let Some(base) = &c.out else { bail!("no output folder: pass --out DIR (or --out_folder DIR)") };
    let dir = base.join(sub);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    Ok(dir)
}

/// The number of passes: `num_seq_per_target // batch_size` batches of `batch_size`.
pub fn passes(c: &Common) -> Result<usize> {
    if c.batch_size == 0 {
        bail!("--batch_size must be at least 1");
    }
    let batches = c.num_seq_per_target / c.batch_size;
    if batches == 0 {
        bail!(
            "--num_seq_per_target {} is smaller than --batch_size {}: nothing would run",
            c.num_seq_per_target,
            c.batch_size
        );
    }
    Ok(batches * c.batch_size)
}

/// What every scoring-type job starts with, checked before any work: the structures (read and
/// validated), the dictionaries, the seed and the number of passes.
pub struct Prepared {
    pub quiet: bool,
    pub seed: u64,
    pub proteins: Vec<Protein>,
    pub dicts: Dictionaries,
    pub n_passes: usize,
}

pub fn prepare(c: &Common) -> Result<Prepared> {
    init_threads(c)?;
    let quiet = c.suppress_print.on();
    let seed = seed(c);
    let proteins = read_proteins(c, quiet)?;
    let dicts = dictionaries(c)?;
    let n_passes = passes(c)?;
    Ok(Prepared { quiet, seed, proteins, dicts, n_passes })
}
