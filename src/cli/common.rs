//! What every job does first: threads, inputs, chain selection, the model, the seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mpnn::checkpoint::{self, locate};
use mpnn::featurize::ChainSelection;
use mpnn::pipeline::Engine;
use mpnn::structure::{self, Protein};

use super::args::Common;

/// Structure file endings picked up from directories.
const STRUCTURE_ENDINGS: [&str; 9] =
    [".pdb", ".pdb.gz", ".ent", ".ent.gz", ".cif", ".cif.gz", ".mmcif", ".mmcif.gz", ".jsonl"];

/// Refuses inline JSON where a path is expected (the official script silently ignores it).
pub fn expect_path(flag: &str, value: &str) -> Result<()> {
    let t = value.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        bail!(
            "{flag} expects the path of a file, but got inline JSON ({}...). The official script \
             silently ignores this and designs every chain; mpnn refuses it. Write the JSON to a \
             file and pass its path, or use the inline options (e.g. --chains A,C).",
            t.chars().take(30).collect::<String>()
        );
    }
    Ok(())
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

/// Chain dictionary from `--chain_id_jsonl` (official format: name → [designed, fixed]).
pub fn chain_dict(c: &Common) -> Result<Option<BTreeMap<String, (Vec<String>, Vec<String>)>>> {
    let Some(path) = c.chain_id_jsonl.as_deref().filter(|p| !p.is_empty()) else { return Ok(None) };
    expect_path("--chain_id_jsonl", path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("{path}: cannot read the chain dictionary"))?;
    let mut dict = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: BTreeMap<String, (Vec<String>, Vec<String>)> = serde_json::from_str(line).with_context(|| {
            format!("{path} line {}: expected {{\"NAME\": [[designed chains], [fixed chains]]}}", i + 1)
        })?;
        dict.extend(v);
    }
    Ok(Some(dict))
}

/// Parses "A,C", "A C" or "A, C" into chain ids.
pub fn parse_chain_list(s: &str) -> Vec<String> {
    s.split([',', ' ']).map(|t| t.trim()).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// The designed/fixed chains of `p`.
pub fn selection_for(
    p: &Protein,
    chains: Option<&str>,
    dict: Option<&BTreeMap<String, (Vec<String>, Vec<String>)>>,
) -> Result<ChainSelection> {
    if let Some(d) = dict {
        if let Some((designed, fixed)) = d.get(&p.name) {
            return Ok(ChainSelection { designed: designed.clone(), fixed: fixed.clone() });
        }
        bail!(
            "{}: not in the chain dictionary (it has: {}); add an entry for it",
            p.name,
            d.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    match chains.map(parse_chain_list).filter(|v| !v.is_empty()) {
        Some(designed) => {
            for c in &designed {
                if p.chain(c).is_none() {
                    bail!(
                        "{}: chain `{c}` is not in the structure (its chains are: {})",
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
    if let Some(p) = &c.path_to_model_weights {
        expect_path("--path_to_model_weights", &p.to_string_lossy())?;
    }
    let query = locate::WeightsQuery {
        path: c.weights.clone(),
        folder: c.path_to_model_weights.clone(),
        model_name: c.model_name.clone(),
        ca_only: c.ca_only,
        soluble: c.use_soluble_model,
        offline: c.offline,
    };
    let path = locate::resolve(&query).map_err(anyhow::Error::new)?;
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
    Engine::new(&ckpt, arch).map_err(anyhow::Error::new)
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

pub fn _unused(_: &Path) {}
