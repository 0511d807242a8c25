//! What every job does first: threads, inputs, chain selection, the model, the seed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mpnn::checkpoint::locate;
use mpnn::cluster;
use mpnn::featurize::ChainSelection;
use mpnn::inputs::{self, Dictionaries};
use mpnn::job::{self, Labels, Model};
use mpnn::kernels::precision::Precision;
use mpnn::preset::Preset;
use mpnn::spec::Shard;
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

/// Where an input structure came from: its file, and its line for jsonl entries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// Position in the run's input order (for listing problems in that order).
    pub order: usize,
    pub path: PathBuf,
    pub line: Option<usize>,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(n) => write!(f, "{} line {n}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// One readable, valid input structure.
pub struct Input {
    pub source: Source,
    pub protein: Protein,
}

/// An input that cannot be used, and why.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub source: Source,
    /// The structure's name, when the file got as far as naming it.
    pub name: Option<String>,
    pub reason: String,
}

impl Invalid {
    /// `error`'s message without the file or structure name it starts with (the listing shows
    /// the full path instead).
    pub fn new(source: &Source, name: Option<&str>, error: impl std::fmt::Display) -> Invalid {
        let full = format!("{error:#}");
        let mut rest = full.as_str();
        let file = source.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = source.path.display().to_string();
        for prefix in [path.as_str(), file.as_str(), name.unwrap_or("")] {
            if !prefix.is_empty() && rest.starts_with(prefix) {
                let after = &rest[prefix.len()..];
                if after.starts_with(':') || after.starts_with(' ') {
                    rest = after;
                    break;
                }
            }
        }
        if let Some(n) = source.line {
            rest = rest.trim_start().strip_prefix(&format!("line {n}")).unwrap_or(rest);
        }
        let reason = rest.trim_start_matches([':', ' ']).to_string();
        Invalid {
            source: source.clone(),
            name: name.map(String::from),
            reason: if reason.is_empty() { full } else { reason },
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Every input structure of the run, read and checked: the usable ones and every unusable one
/// (none is dropped silently and reading never stops at the first bad file).
pub struct Inputs {
    pub ok: Vec<Input>,
    pub invalid: Vec<Invalid>,
}

/// Why `name` cannot name output files, if it cannot.
fn bad_output_name(name: &str) -> Option<String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        Some(format!(
            "the structure name `{name}` cannot name an output file; give the file (or the jsonl entry's \
             \"name\") a plain name without `/` or `\\`"
        ))
    } else {
        None
    }
}

/// Reads every structure named by the inputs (skipping, with a note, those longer than
/// `--max_length`), collecting every unreadable or invalid one with its reason.
pub fn read_inputs(c: &Common, quiet: bool) -> Result<Inputs> {
    let mut ok = Vec::new();
    let mut invalid = Vec::new();
    let mut order = 0usize;
    for path in structure_paths(c)? {
        let entries = match structure::read_path_entries(&path) {
            Ok(e) => e,
            Err(e) => {
                invalid.push(Invalid::new(&Source { order, path: path.clone(), line: None }, None, e));
                order += 1;
                continue;
            }
        };
        for (line, entry) in entries {
            let source = Source { order, path: path.clone(), line };
            order += 1;
            let p = match entry {
                Ok(p) => p,
                Err(e) => {
                    invalid.push(Invalid::new(&source, None, e));
                    continue;
                }
            };
            if let Some(why) = bad_output_name(&p.name) {
                invalid.push(Invalid::new(&source, None, why));
                continue;
            }
            if p.len() > c.max_length {
                if !quiet {
                    eprintln!("skipping {}: {} residues is more than --max_length {}", p.name, p.len(), c.max_length);
                }
                continue;
            }
            if let Err(e) = p.validate(c.ca_only) {
                invalid.push(Invalid::new(&source, Some(&p.name), e));
                continue;
            }
            ok.push(Input { source, protein: p });
        }
    }
    Ok(Inputs { ok, invalid })
}

impl Inputs {
    /// Runs a per-structure step (featurization, constraint checks) on every usable input; an
    /// input whose step fails moves to [`Inputs::invalid`] with the error as its reason.
    pub fn prepare_each<T>(&mut self, mut step: impl FnMut(&Input) -> Result<T>) -> Vec<(Input, T)> {
        let mut out = Vec::new();
        for input in std::mem::take(&mut self.ok) {
            match step(&input) {
                Ok(t) => out.push((input, t)),
                Err(e) => self.invalid.push(Invalid::new(&input.source, Some(&input.protein.name), e)),
            }
        }
        self.invalid.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

/// Refuses inputs that share an output name (`d1/model.pdb` and `d2/model.pdb`, `x.pdb` and
/// `x.cif`, jsonl entries with one `name`): each would overwrite the other's results. Lists every
/// collision; `output` is the file a name writes (for the message).
pub fn check_unique_names<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a Source)>,
    output: impl Fn(&str) -> PathBuf,
) -> Result<()> {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&Source>> = std::collections::BTreeMap::new();
    for (name, source) in inputs {
        by_name.entry(name).or_default().push(source);
    }
    let clashes: Vec<String> = by_name
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(name, v)| {
            let sources: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            format!(
                "  {} (structure `{name}`) would be written by each of: {}",
                output(name).display(),
                sources.join(", ")
            )
        })
        .collect();
    if clashes.is_empty() {
        return Ok(());
    }
    bail!(
        "{} output name{} shared by more than one input; each would overwrite the other's results:\n{}\n\
         Outputs are named after the input's file name without folder and extension (or a jsonl entry's \"name\"). \
         Rename the inputs (or entries) so their names differ, or run them into separate --out folders. Nothing was written.",
        clashes.len(),
        if clashes.len() == 1 { " is" } else { "s are" },
        clashes.join("\n")
    )
}

/// What to do about invalid inputs: without `skip`, stop listing every one of them; with it,
/// go on with the rest (say so on stderr), unless nothing is left. `list` is where the skipped
/// inputs will be recorded ([`write_skip_list`]).
pub fn settle_invalid(invalid: &[Invalid], usable: usize, skip: bool, list: &Path) -> Result<()> {
    if invalid.is_empty() {
        return Ok(());
    }
    let total = invalid.len() + usable;
    let listing: Vec<String> = invalid.iter().map(|i| format!("  {i}")).collect();
    if !skip {
        bail!(
            "{} of {total} input structure{} cannot be used:\n{}\nFix or remove {}, or pass --skip-invalid to process \
             the other {usable} and list the skipped ones in {}. Nothing was written.",
            invalid.len(),
            if total == 1 { "" } else { "s" },
            listing.join("\n"),
            if invalid.len() == 1 { "it" } else { "them" },
            list.display()
        );
    }
    if usable == 0 {
        bail!(
            "--skip-invalid: every input structure is invalid, nothing to do:\n{}\nFix the inputs. Nothing was written.",
            listing.join("\n")
        );
    }
    eprintln!(
        "warning: --skip-invalid: skipping {} of {total} input structures (listed in {}):\n{}",
        invalid.len(),
        list.display(),
        listing.join("\n")
    );
    Ok(())
}

/// Records the inputs a run skipped (`input<TAB>structure<TAB>reason` with a header line),
/// atomically; with none, removes a list left by an earlier run so it never goes stale.
pub fn write_skip_list(list: &Path, invalid: &[Invalid]) -> Result<()> {
    if invalid.is_empty() {
        match std::fs::remove_file(list) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e)
                    .with_context(|| format!("{}: cannot remove the stale list of skipped inputs", list.display()))
            }
            _ => return Ok(()),
        }
    }
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut text = String::from("input\tstructure\treason\n");
    for i in invalid {
        text.push_str(&format!(
            "{}\t{}\t{}\n",
            clean(&i.source.to_string()),
            clean(i.name.as_deref().unwrap_or("")),
            clean(&i.reason)
        ));
    }
    structure::write_atomic(list, text.as_bytes()).with_context(|| format!("{}: cannot write", list.display()))
}

/// Reads every structure and stops, listing every invalid one, if any is invalid.
pub fn read_proteins(c: &Common, quiet: bool) -> Result<Vec<Protein>> {
    let inputs = read_inputs(c, quiet)?;
    if !inputs.invalid.is_empty() {
        let listing: Vec<String> = inputs.invalid.iter().map(|i| format!("  {i}")).collect();
        bail!(
            "{} input structure{} cannot be used:\n{}\nFix or remove {}.",
            inputs.invalid.len(),
            if inputs.invalid.len() == 1 { "" } else { "s" },
            listing.join("\n"),
            if inputs.invalid.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(inputs.ok.into_iter().map(|i| i.protein).collect())
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
    let chains = chains.map(parse_chain_list);
    Ok(job::select_chains(p, chains.as_deref(), &Labels::CLI)?)
}

/// Loads the model the flags ask for, configured by `--preset`, `--k` and `--precision`.
pub fn load_configured(c: &Common, quiet: bool) -> Result<Model> {
    let model = load_model(c, None, quiet)?;
    let model = configure(&model, c.preset, c.k, c.precision)?;
    let precision = model.engine().model.precision;
    Ok(model.on_device(&device_for(c.device, precision, quiet)?))
}

/// [`device`] for a model computed in `precision` ([`mpnn::device::Device::open_for`]: an
/// error for `gpu` when the GPU cannot run it, the CPU with a note for `auto`).
pub fn device_for(
    choice: mpnn::device::DeviceChoice,
    precision: Precision,
    quiet: bool,
) -> Result<mpnn::device::Device> {
    use mpnn::device::Device;
    let mut note = |s: &str| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    if let Some(cpu) = Device::cpu_only_for(choice, precision, &mut note) {
        return Ok(cpu);
    }
    Ok(device(choice, quiet)?.for_precision(choice, precision, &mut note)?)
}

/// The device `--device` names, opened once per process (`auto` says on stderr which it took
/// when it took a GPU).
pub fn device(choice: mpnn::device::DeviceChoice, quiet: bool) -> Result<mpnn::device::Device> {
    use mpnn::device::{Device, DeviceChoice};
    static OPENED: std::sync::Mutex<Vec<(DeviceChoice, Device)>> = std::sync::Mutex::new(Vec::new());
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, d)) = opened.iter().find(|(c, _)| *c == choice) {
        return Ok(d.clone());
    }
    let d = Device::open(choice)?;
    if !quiet && d.is_gpu() {
        eprintln!("device: {d}");
    }
    opened.push((choice, d.clone()));
    Ok(d)
}

/// The weights file the weight flags of `c` name (found, or downloaded unless offline).
pub fn weights_path(c: &Common) -> Result<PathBuf> {
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
    locate::resolve(&query).map_err(anyhow::Error::new)
}

/// A `--weights` checkpoint read once already (by `native_ligand::model_for`, which reads it to
/// see whether it is a LigandMPNN model), handed to the first [`load_model`] of the same path.
static PRELOADED: std::sync::Mutex<Option<(PathBuf, mpnn::checkpoint::Checkpoint)>> = std::sync::Mutex::new(None);

/// Keeps `ckpt`, read from `path`, for the next [`load_model`] of that path.
pub fn preload(path: &Path, ckpt: mpnn::checkpoint::Checkpoint) {
    *PRELOADED.lock().unwrap_or_else(|e| e.into_inner()) = Some((path.to_path_buf(), ckpt));
}

fn take_preloaded(path: &Path) -> Option<mpnn::checkpoint::Checkpoint> {
    let mut slot = PRELOADED.lock().unwrap_or_else(|e| e.into_inner());
    match slot.take() {
        Some((p, ckpt)) if p == path => Some(ckpt),
        other => {
            *slot = other;
            None
        }
    }
}

/// Loads the checkpoint the weight flags of `c` name (or `explicit`, when given) as the exact
/// model at its own k, printing its edges and noise level like the official script.
pub fn load_model(c: &Common, explicit: Option<&Path>, quiet: bool) -> Result<Model> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => weights_path(c)?,
    };
    let model = match take_preloaded(&path) {
        Some(ckpt) => Model::from_checkpoint(&ckpt, &path, Some(c.ca_only), &Labels::CLI)?,
        None => Model::from_file(&path, Some(c.ca_only), &Labels::CLI)?,
    };
    if !quiet {
        println!("Number of edges: {}", model.num_edges());
        println!("Training noise level: {}A", model.noise_level());
    }
    Ok(model)
}

/// Applies a preset and the explicit `--k` / `--precision` (which win over the preset's),
/// warning about every approximation.
pub fn configure(
    model: &Model,
    preset: Option<Preset>,
    k: Option<usize>,
    precision: Option<Precision>,
) -> Result<Model> {
    let configured = model.configured(preset, k, precision, &Labels::CLI)?;
    for w in configured.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(configured)
}

/// The run's seed: the given one, or (0) a random one in 0..999 like the official script.
pub fn seed(c: &Common) -> u64 {
    if c.seed != 0 {
        return c.seed;
    }
    use rand::Rng;
    rand::thread_rng().gen_range(0..999)
}

/// Sets the global thread pool: `--threads`, else `SLURM_CPUS_PER_TASK` when set (the CPUs
/// Slurm gave this task), else every core.
pub fn init_threads(c: &Common) -> Result<()> {
    let n = match c.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Some(n),
        None => cluster::cpus_per_task(|k| std::env::var(k).ok())
            .context("--threads is not given, so mpnn uses the CPUs Slurm gave this task, but")?,
    };
    if let Some(n) = n {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
    Ok(())
}

/// The shard this run designs: `--shard I/N`; `--shard auto` (from the Slurm array task's
/// environment); or, without `--shard`, the Slurm array task's shard when `SLURM_ARRAY_TASK_ID`
/// is set (said on stderr). `None`: every structure.
pub fn shard_of_run(flag: Option<&str>, quiet: bool) -> Result<Option<Shard>> {
    let env = |k: &str| std::env::var(k).ok();
    match flag.map(str::trim) {
        Some("auto") => match cluster::array_shard(env).context("--shard auto")? {
            Some(t) => {
                if !quiet {
                    eprintln!("--shard auto: this task designs shard {} ({})", t.shard, t.explanation);
                }
                Ok(Some(t.shard))
            }
            None => bail!(
                "--shard auto: SLURM_ARRAY_TASK_ID is not set, so this is not a Slurm array task; give --shard I/N"
            ),
        },
        Some(s) => Ok(Some(
            s.parse::<Shard>().with_context(|| format!("--shard {s}: use I/N with 1 <= I <= N (e.g. 1/4), or auto"))?,
        )),
        None => match cluster::array_shard(env).context(
            "SLURM_ARRAY_TASK_ID is set and --shard is not given, so this Slurm array task would design its shard of \
             the structures (as --shard auto), but",
        )? {
            Some(t) => {
                if !quiet {
                    eprintln!(
                        "SLURM_ARRAY_TASK_ID is set and --shard is not given: this task designs shard {} ({}); \
                         pass --shard 1/1 to design every structure in each task",
                        t.shard, t.explanation
                    );
                }
                Ok(Some(t.shard))
            }
            None => Ok(None),
        },
    }
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
/// validated; the invalid ones collected), the dictionaries, the seed and the number of passes.
pub struct Prepared {
    pub quiet: bool,
    pub seed: u64,
    pub inputs: Inputs,
    pub dicts: Dictionaries,
    pub n_passes: usize,
}

pub fn prepare(c: &Common) -> Result<Prepared> {
    init_threads(c)?;
    let quiet = c.suppress_print.on();
    let seed = seed(c);
    let inputs = read_inputs(c, quiet)?;
    let dicts = dictionaries(c)?;
    let n_passes = passes(c)?;
    Ok(Prepared { quiet, seed, inputs, dicts, n_passes })
}

/// The output folder (--out / --out_folder), not created.
pub fn out_base(c: &Common) -> Result<PathBuf> {
    c.out.clone().context("no output folder: pass --out DIR (or --out_folder DIR)")
}
