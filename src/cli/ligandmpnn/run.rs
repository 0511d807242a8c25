//! `mpnn ligandmpnn run`: LigandMPNN's `run.py`.
//!
//! Order of work: every flag, JSON file, structure and the checkpoint are checked, and every
//! structure is parsed and its residue selection resolved, before the first file is written;
//! then the model (loaded once) designs each structure in turn and its files are written, each
//! through a temporary file and a rename.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::args::{ModelType, RunArgs};
use super::engine::{self, Design, Model, ParseOptions, Prepared, RunRng};
use super::inputs::{self, Request};
use mpnn::alphabet::{letter_of, three_of_one};
use mpnn::ligand::output::fasta::{self, FastaHeader, FastaSample};
use mpnn::ligand::output::pdb::{self, Threaded};
use mpnn::ligand::output::stats::RunStats;
use mpnn::ligand::output::torch_save::torch_save;
use mpnn::output::python_str_list;

/// The checks `run.py` leaves to a crash, made before anything is written.
fn check_flags(a: &RunArgs) -> Result<()> {
    if a.packing.pack_side_chains.on() {
        bail!(
            "--pack_side_chains 1: side-chain packing is not supported yet; run without it (designs, \
             backbones and stats are written as usual) and pack with the official run.py if you need \
             packed models"
        );
    }
    check_common(&a.input)?;
    if !(a.temperature.is_finite() && a.temperature > 0.0) {
        bail!("--temperature {}: give a positive temperature such as 0.1", a.temperature);
    }
    Ok(())
}

/// Checks shared with `score`.
pub fn check_common(input: &super::args::InputArgs) -> Result<()> {
    if input.batch_size < 1 {
        bail!("--batch_size {}: give at least 1", input.batch_size);
    }
    if input.number_of_batches < 1 {
        bail!("--number_of_batches {}: give at least 1", input.number_of_batches);
    }
    if !input.ligand_mpnn_cutoff_for_score.is_finite() || input.ligand_mpnn_cutoff_for_score < 0.0 {
        bail!(
            "--ligand_mpnn_cutoff_for_score {}: give a distance in Å such as 8.0",
            input.ligand_mpnn_cutoff_for_score
        );
    }
    if !(0..=2).contains(&input.global_transmembrane_label) {
        bail!(
            "--global_transmembrane_label {}: give 1 (transmembrane) or 0 (soluble)",
            input.global_transmembrane_label
        );
    }
    if input.out_folder.is_empty() {
        bail!("--out_folder is empty; give the folder to write to");
    }
    Ok(())
}

/// The checkpoint flag's name and path, checked to exist.
///
/// The official default path (`./model_params/<file>.pt`) that does not exist is fetched: the
/// published file of that name is downloaded to the cache and verified
/// ([`mpnn::checkpoint::fetch_ligand_weights`]), and its cached path is used. An explicit path
/// that does not exist is an error.
pub fn checkpoint_path(model: &super::args::ModelArgs) -> Result<String> {
    let path = model.checkpoint().to_string();
    if Path::new(&path).is_file() {
        return Ok(path);
    }
    let t = model.model_type;
    if path == super::args::default_checkpoint(t) {
        let file = path.rsplit('/').next().unwrap_or(&path);
        let w = mpnn::checkpoint::fetch_ligand_weights(t, file).with_context(|| {
            format!(
                "--checkpoint_{t} {path}: no such file, and fetching the published {file} failed \
                 (or give the path of the {t} weights with --checkpoint_{t})"
            )
        })?;
        let how = if w.downloaded { "downloaded and verified the published" } else { "using the cached, verified" };
        eprintln!("{path} not found; {how} {file} at {} (sha256 {})", w.path.display(), w.sha256);
        return Ok(w.path.display().to_string());
    }
    bail!(
        "--checkpoint_{} {path}: no such file; give the path of the {} weights (see README \
         \"LigandMPNN\" for where to get them)",
        t.as_str(),
        t.as_str()
    );
}

/// Parse options from the flags, as `run.py` / `score.py` pass them on.
pub fn parse_options(input: &super::args::InputArgs, model_type: ModelType) -> ParseOptions {
    ParseOptions {
        chains: inputs::parse_chains_only(&input.parse_these_chains_only),
        side_chain_context: model_type == ModelType::LigandMpnn && input.ligand_mpnn_use_side_chain_context.on(),
        zero_occupancy: input.parse_atoms_with_zero_occupancy.on(),
        use_atom_context: input.ligand_mpnn_use_atom_context.on(),
        cutoff_for_score: input.ligand_mpnn_cutoff_for_score,
    }
}

/// The run's seed: the given one, or a random one below 99999 as `run.py` draws it.
pub fn resolve_seed(seed: i64) -> i64 {
    if seed != 0 {
        seed
    } else {
        use rand::Rng;
        rand::thread_rng().gen_range(0..99999)
    }
}

/// Two structures with one output name (`a/x.pdb` and `b/x.pdb`) would overwrite each other's
/// files: refused before anything is written.
pub fn check_unique_names(requests: &[Request], what: &str) -> Result<()> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for r in requests {
        let name = fasta::structure_name(&r.pdb);
        if let Some(first) = seen.insert(name.clone(), &r.pdb) {
            if first == r.pdb {
                bail!("structure {} is listed twice; list each structure once", r.pdb);
            }
            bail!(
                "structures {first} and {} would both write {what} for {name}; rename one, or run them into \
                 separate --out_folder folders",
                r.pdb
            );
        }
    }
    Ok(())
}

/// Files of an earlier run that this run replaces are said on stderr (never replaced silently).
pub fn note_replaced(paths: &[PathBuf]) {
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if let Some(first) = existing.first() {
        let more = if existing.len() > 1 { format!(" and {} more", existing.len() - 1) } else { String::new() };
        eprintln!("note: replacing {}{more} (files of an earlier run in this --out_folder)", first.display());
    }
}

/// Prepares every structure once, so a bad one stops the run before anything is written; says
/// each structure's notes (dropped context atoms, ...) on stderr. Keeps the prepared structures
/// of short lists for the main loop ([`PreparedAll::take`]).
pub fn prepare_all(model: &Model, requests: &[Request], opts: &ParseOptions) -> Result<PreparedAll> {
    let mut kept = Vec::new();
    for r in requests {
        let p = engine::prepare(model, r, opts)?;
        for n in &p.notes {
            eprintln!("note: {n}");
        }
        if requests.len() <= KEEP_PREPARED {
            kept.push(Some(p));
        }
    }
    Ok(PreparedAll { kept })
}

/// Up to this many structures, the ones [`prepare_all`] parsed and featurized are kept for the
/// main loop (parsing 7v11 again costs about as much as writing its outputs); longer lists are
/// prepared again one at a time so that memory does not grow with the list.
const KEEP_PREPARED: usize = 16;

/// What [`prepare_all`] kept.
pub struct PreparedAll {
    kept: Vec<Option<Prepared>>,
}

impl PreparedAll {
    /// Request `i`'s prepared structure: the kept one (once), or prepared again.
    pub fn take(&mut self, i: usize, model: &Model, r: &Request, opts: &ParseOptions) -> Result<Prepared> {
        match self.kept.get_mut(i).and_then(Option::take) {
            Some(p) => Ok(p),
            None => engine::prepare(model, r, opts),
        }
    }
}

pub fn run(a: &RunArgs) -> Result<()> {
    check_flags(a)?;
    let requests = inputs::run_requests(a)?;
    let pdbs: Vec<String> = requests.iter().map(|r| r.pdb.clone()).collect();
    inputs::check_structures_exist(&pdbs, &a.input)?;
    check_unique_names(&requests, "seqs/NAME.fa and backbones/NAME_N.pdb")?;
    let ckpt = checkpoint_path(&a.model)?;
    let model = Model::load(a.model.model_type, &ckpt, a.input.ligand_mpnn_use_side_chain_context.on())?;
    let opts = parse_options(&a.input, a.model.model_type);
    let mut prepared = prepare_all(&model, &requests, &opts)?;

    let verbose = a.input.verbose.on();
    let seed = resolve_seed(a.input.seed);
    let base = PathBuf::from(&a.input.out_folder);
    for sub in ["seqs", "backbones", "packed"] {
        std::fs::create_dir_all(base.join(sub)).with_context(|| format!("creating {}", base.join(sub).display()))?;
    }
    if a.save_stats.on() {
        std::fs::create_dir_all(base.join("stats")).with_context(|| format!("creating {}/stats", base.display()))?;
    }
    let rng = RunRng { seed: seed as u64 };
    for (i, r) in requests.iter().enumerate() {
        if verbose {
            println!("Designing protein from this path: {}", r.pdb);
        }
        let p = prepared.take(i, &model, r, &opts)?;
        if verbose {
            report_selection(&p);
        }
        design_one(a, &model, &ckpt, seed, r, &p, &base, &rng)?;
    }
    Ok(())
}

fn report_selection(p: &Prepared) {
    let (mut redesigned, mut fixed) = (Vec::new(), Vec::new());
    for (id, &m) in p.residue_ids.iter().zip(&p.features.chain_mask) {
        if m == 1.0 {
            redesigned.push(id.clone());
        } else {
            fixed.push(id.clone());
        }
    }
    println!("These residues will be redesigned:  {}", python_str_list(&redesigned));
    println!("These residues will be fixed:  {}", python_str_list(&fixed));
}

#[allow(clippy::too_many_arguments)]
fn design_one(
    a: &RunArgs,
    model: &Model,
    ckpt: &str,
    seed: i64,
    r: &Request,
    p: &Prepared,
    base: &Path,
    rng: &RunRng,
) -> Result<()> {
    let f = &p.features;
    let name = fasta::structure_name(&r.pdb);
    let batch_size = a.input.batch_size as usize;
    let enc = engine::encode(model, p).with_context(|| format!("encoding {}", r.pdb))?;
    let designs: Vec<Design> =
        engine::sample_all(model, p, &enc, a.temperature, batch_size, a.input.number_of_batches as usize, rng)
            .with_context(|| format!("designing {}", r.pdb))?;
    let ligand_model = a.model.model_type == ModelType::LigandMpnn;
    let mask_xy = ligand_model.then_some(f.mask_xy.as_slice());

    let stem = format!("{name}{}", a.input.file_ending);
    let first_id = if a.input.zero_indexed() { 0 } else { 1 };
    let mut planned = vec![base.join("seqs").join(format!("{stem}.fa"))];
    if a.save_stats.on() {
        planned.push(base.join("stats").join(format!("{stem}.pt")));
    }
    for ix in 0..designs.len() {
        planned.push(base.join("backbones").join(format!("{name}_{}{}.pdb", ix + first_id, a.input.file_ending)));
    }
    note_replaced(&planned);
    if a.save_stats.on() {
        let stats = RunStats {
            generated_sequences: designs.iter().map(|d| d.s.clone()).collect(),
            sampling_probs: designs.iter().map(|d| d.sampling_probs.clone()).collect(),
            log_probs: designs.iter().map(|d| d.log_probs.clone()).collect(),
            decoding_order: designs.iter().map(|d| d.decoding_order.clone()).collect(),
            native_sequence: f.s.clone(),
            mask: f.mask.clone(),
            chain_mask: f.chain_mask.clone(),
            chain_mask_dtype: p.chain_mask_dtype,
            seed,
            temperature: a.temperature,
        };
        let path = base.join("stats").join(format!("{stem}.pt"));
        torch_save(&stats.to_py(), &path).with_context(|| format!("writing {}", path.display()))?;
    }

    let num_res: f32 = (0..f.len()).map(|i| f.mask[i] * f.chain_mask[i]).sum();
    let num_ligand_res: f32 = match mask_xy {
        Some(xy) => (0..f.len()).map(|i| f.mask[i] * xy[i] * f.chain_mask[i]).sum(),
        None => num_res,
    };
    let letters = |s: &[u8]| s.iter().map(|&x| letter_of(x)).collect::<Vec<char>>();
    let header = FastaHeader {
        name: name.clone(),
        temperature: a.temperature,
        seed,
        num_res: num_res as i64,
        num_ligand_res: num_ligand_res as i64,
        use_ligand_context: a.input.ligand_mpnn_use_atom_context.on(),
        ligand_cutoff_distance: a.input.ligand_mpnn_cutoff_for_score,
        batch_size,
        number_of_batches: a.input.number_of_batches as usize,
        model_path: ckpt.to_string(),
        native: fasta::chain_sequence(&letters(&f.s), &p.chain_ids, &a.fasta_seq_separation),
    };
    let remark = pdb::remark(
        a.input.parse_atoms_with_zero_occupancy.on(),
        &inputs::parse_chains_only(&a.input.parse_these_chains_only),
        !p.ligand_atoms.is_empty(),
    );
    let mut samples = Vec::new();
    for (ix, d) in designs.iter().enumerate() {
        let id = ix + first_id;
        samples.push(FastaSample {
            id,
            overall_confidence: d.overall_confidence,
            ligand_confidence: d.ligand_confidence,
            seq_rec: d.seq_rec,
            seq: fasta::chain_sequence(&letters(&d.s), &p.chain_ids, &a.fasta_seq_separation),
        });
        let threaded: Vec<Option<Threaded>> = p
            .backbone_residue
            .iter()
            .map(|res| {
                res.map(|i| Threaded {
                    resname: three_of_one(letter_of(d.s[i])).to_string(),
                    beta: pdb::confidence_beta(d.loss_per_residue[i]),
                })
            })
            .collect();
        let text = pdb::backbone_pdb(&remark, &p.backbone_atoms, &threaded, &p.ligand_atoms, p.has_anisou);
        let path = base.join("backbones").join(format!("{name}_{id}{}.pdb", a.input.file_ending));
        mpnn::structure::write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    let path = base.join("seqs").join(format!("{stem}.fa"));
    mpnn::structure::write_atomic(&path, fasta::fasta_text(&header, &samples).as_bytes())
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
