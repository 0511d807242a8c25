//! The seam between the command line and the LigandMPNN library: load a checkpoint, prepare a
//! structure (parse with ProDy's rules → `run.py`'s residue selection → `featurize`), sample,
//! score. The command line (`run.rs`, `score.rs`) only talks to these functions.
//!
//! Random numbers: `run.py` seeds torch once per process; here every draw comes from the crate's
//! seeded streams ([`mpnn::rng`]), keyed by the seed, the structure's name and the sample /
//! batch / pass index, so a design does not depend on what else the run held. As in `run.py`,
//! the designs of one batch share their decoding order (one `randn` per batch) and differ in
//! their draws; each scoring pass has its own `randn`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::args::ModelType;
use super::inputs::Request;
use mpnn::ligand::featurize::{featurize, ContextOptions};
use mpnn::ligand::network::single_aa_order;
use mpnn::ligand::output::pdb::{input_annotations, PdbAtom};
use mpnn::ligand::output::torch_save::Dtype;
use mpnn::ligand::parse::{read_ligand_structure, AtomRecord, ParseOptions as ParserOptions};
use mpnn::ligand::sample::{seeded_chooser, seeded_randn};
use mpnn::ligand::{select, LigandEncoded, LigandFeatures, LigandMpnn, SampleOptions};
use mpnn::rng::{self, Purpose};

/// A loaded LigandMPNN-family model.
pub struct Model {
    pub model_type: ModelType,
    pub net: LigandMpnn,
}

fn library_type(t: ModelType) -> mpnn::ligand::ModelType {
    use mpnn::ligand::ModelType as L;
    match t {
        ModelType::ProteinMpnn => L::ProteinMpnn,
        ModelType::LigandMpnn => L::LigandMpnn,
        ModelType::PerResidueLabelMembraneMpnn => L::PerResidueLabelMembraneMpnn,
        ModelType::GlobalLabelMembraneMpnn => L::GlobalLabelMembraneMpnn,
        ModelType::SolubleMpnn => L::SolubleMpnn,
    }
}

impl Model {
    /// Loads `path` as `model_type` (side-chain context: ligand_mpnn only, as in `run.py`).
    pub fn load(model_type: ModelType, path: &str, side_chain_context: bool) -> Result<Model> {
        let net = LigandMpnn::load(Path::new(path), library_type(model_type))
            .map_err(|e| anyhow!("{e}"))?
            .with_side_chain_context(side_chain_context && model_type == ModelType::LigandMpnn);
        Ok(Model { model_type, net })
    }
}

/// How structures are parsed and featurized (the flags `parse_PDB` and `featurize` take).
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `--parse_these_chains_only` (empty: all chains).
    pub chains: Vec<String>,
    /// `--ligand_mpnn_use_side_chain_context 1` (ligand_mpnn only): parse all 37 atoms.
    pub side_chain_context: bool,
    /// `--parse_atoms_with_zero_occupancy 1`.
    pub zero_occupancy: bool,
    /// `--ligand_mpnn_use_atom_context`.
    pub use_atom_context: bool,
    /// `--ligand_mpnn_cutoff_for_score`.
    pub cutoff_for_score: f64,
}

/// One structure ready for the model, with what the output files need.
pub struct Prepared {
    /// The structure's name (file stem), keying its random streams.
    pub name: String,
    pub features: LigandFeatures,
    /// `run.py` residue names (chain + number + insertion code), one per residue.
    pub residue_ids: Vec<String>,
    /// Chain id of each residue.
    pub chain_ids: Vec<String>,
    /// Symmetry groups (0-based positions) and weights, as `run.py` remapped them (empty: none).
    pub symmetry_residues: Vec<Vec<usize>>,
    pub symmetry_weights: Vec<Vec<f32>>,
    /// Integer type of the saved `chain_mask`.
    pub chain_mask_dtype: Dtype,
    /// ProDy's `backbone` selection (file order) and, per atom, its residue (None: no residue,
    /// e.g. a residue without CA).
    pub backbone_atoms: Vec<PdbAtom>,
    pub backbone_residue: Vec<Option<usize>>,
    /// ProDy's `not protein and not water` selection.
    pub ligand_atoms: Vec<PdbAtom>,
    /// The input had ANISOU records.
    pub has_anisou: bool,
    /// Things the user should know (context atoms dropped, ...), said once on stderr.
    pub notes: Vec<String>,
}

/// One designed sequence with what `model.sample` returns for it and `run.py`'s numbers.
pub struct Design {
    /// [L] alphabet indices.
    pub s: Vec<u8>,
    /// [L·20]
    pub sampling_probs: Vec<f32>,
    /// [L·21]
    pub log_probs: Vec<f32>,
    /// [L]
    pub decoding_order: Vec<usize>,
    pub overall_confidence: f32,
    pub ligand_confidence: f32,
    pub seq_rec: f32,
    /// [L] cross entropy of each residue (the backbone PDB's B-factors).
    pub loss_per_residue: Vec<f32>,
}

/// Which score function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    Autoregressive,
    SingleAa,
}

/// One scoring pass.
pub struct ScorePass {
    /// [L·21]
    pub logits: Vec<f32>,
    /// [L·21]
    pub log_probs: Vec<f32>,
    /// [L] (autoregressive) or [L][L] flattened (single_aa: per position, its order).
    pub decoding_order: Vec<usize>,
}

/// The run's seed, shared by every stream.
pub struct RunRng {
    pub seed: u64,
}

fn pdb_atom(a: &AtomRecord, ann: &mpnn::ligand::output::pdb::InputAnnotations) -> PdbAtom {
    PdbAtom {
        hetatm: a.hetatm,
        name: a.name.clone(),
        altloc: if a.altloc == ' ' { String::new() } else { a.altloc.to_string() },
        resname: a.resname.clone(),
        chain: a.chain.clone(),
        resnum: a.resnum,
        icode: a.icode.clone(),
        xyz: a.xyz,
        occupancy: a.occupancy,
        beta: a.b_factor,
        segment: a.segment.clone(),
        element: a.element.clone(),
        charge: a.charge,
        anisou: ann.anisou.get(&a.line).copied(),
        ter_after: ann.ter_after.contains(&a.line),
    }
}

/// The text of a structure file (gzip undone), for the records the parser does not keep.
fn file_text(path: &str) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{path}: cannot read file"))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{path}: not a readable gzip file"))?;
        out
    } else {
        bytes
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parse → select → featurize one structure.
pub fn prepare(model: &Model, r: &Request, opts: &ParseOptions) -> Result<Prepared> {
    let st = read_ligand_structure(
        Path::new(&r.pdb),
        &ParserOptions { chains: opts.chains.clone(), parse_atoms_with_zero_occupancy: opts.zero_occupancy },
    )
    .map_err(|e| anyhow!("{e}"))?;
    let e = |e: select::InputError| anyhow!("{e}");
    let membrane = match model.model_type {
        ModelType::PerResidueLabelMembraneMpnn => select::MembraneLabels::PerResidue,
        ModelType::GlobalLabelMembraneMpnn => select::MembraneLabels::Global,
        _ => select::MembraneLabels::None,
    };
    let sel = select::selections(&st, &r.flags, membrane).map_err(e)?;
    let ctx = if model.model_type == ModelType::LigandMpnn {
        ContextOptions {
            atom_context_num: model.net.atom_context_num(),
            cutoff_for_score: opts.cutoff_for_score as f32,
            use_atom_context: opts.use_atom_context,
            side_chain_context: opts.side_chain_context,
        }
    } else {
        ContextOptions::without_context()
    };
    let featurized = featurize(&st, &ctx, &sel.chain_mask, &sel.bias, sel.membrane_labels).map_err(e)?;
    let mut notes: Vec<String> = Vec::new();
    if model.model_type == ModelType::LigandMpnn {
        notes.extend(st.notes.iter().map(|n| n.describe(&st)));
        notes.extend(featurized.notes.iter().map(|n| n.to_string()));
    }
    let listed = |s: &str| s.split_whitespace().next().is_some();
    let chain_mask_dtype =
        if listed(&r.flags.redesigned_residues) || listed(&r.flags.fixed_residues) { Dtype::I64 } else { Dtype::I32 };
    let ann = input_annotations(&file_text(&r.pdb)?);
    let mut index: HashMap<(String, i32, String), usize> = HashMap::new();
    for (i, id) in st.ids.iter().enumerate() {
        index.insert((id.chain.clone(), id.number, id.icode.clone()), i);
    }
    let backbone_residue =
        st.backbone.iter().map(|a| index.get(&(a.chain.clone(), a.resnum, a.icode.clone())).copied()).collect();
    Ok(Prepared {
        name: st.name.clone(),
        features: featurized.features,
        residue_ids: st.residue_names(),
        chain_ids: st.ids.iter().map(|id| id.chain.clone()).collect(),
        symmetry_residues: sel.symmetry.groups,
        symmetry_weights: sel.symmetry.weights,
        chain_mask_dtype,
        backbone_atoms: st.backbone.iter().map(|a| pdb_atom(a, &ann)).collect(),
        backbone_residue,
        ligand_atoms: st.other_atoms.iter().map(|a| pdb_atom(a, &ann)).collect(),
        has_anisou: ann.any_anisou,
        notes,
    })
}

/// Encodes a prepared structure once, for all its batches / passes.
pub fn encode(model: &Model, p: &Prepared) -> Result<LigandEncoded> {
    model.net.encode(&p.features).map_err(|e| anyhow!("{e}"))
}

/// The `batch_size` designs of batch `batch` (one `model.sample` call in `run.py`).
pub fn sample(
    model: &Model,
    p: &Prepared,
    enc: &LigandEncoded,
    temperature: f64,
    batch_size: usize,
    batch: usize,
    rng: &RunRng,
) -> Result<Vec<Design>> {
    let f = &p.features;
    let randn = seeded_randn(rng.seed, &p.name, batch as u64, f.len());
    let options = SampleOptions {
        temperature: temperature as f32,
        symmetry_residues: p.symmetry_residues.clone(),
        symmetry_weights: p.symmetry_weights.clone(),
    };
    (0..batch_size)
        .map(|b| {
            let mut chooser = seeded_chooser(rng.seed, &p.name, (batch * batch_size + b) as u64);
            let s = model.net.sample(enc, f, &randn, &options, &mut chooser).map_err(|e| anyhow!("{e}"))?;
            Ok(Design {
                s: s.s,
                sampling_probs: s.sampling_probs,
                log_probs: s.log_probs,
                decoding_order: s.decoding_order,
                overall_confidence: s.confidence.overall_confidence,
                ligand_confidence: s.confidence.ligand_confidence,
                seq_rec: s.confidence.seq_rec,
                loss_per_residue: s.confidence.loss_per_residue,
            })
        })
        .collect()
}

/// Scoring pass `pass` (each pass has its own `randn`, as each row of `score.py`'s batch).
pub fn score(
    model: &Model,
    p: &Prepared,
    enc: &LigandEncoded,
    kind: ScoreKind,
    use_sequence: bool,
    pass: usize,
    rng: &RunRng,
) -> Result<ScorePass> {
    let f = &p.features;
    let l = f.len();
    let randn = rng::randn(&mut rng::stream(rng.seed, &p.name, Purpose::ScoreOrder, pass as u64), l);
    Ok(match kind {
        ScoreKind::Autoregressive => {
            let out =
                model.net.score(enc, f, &randn, &p.symmetry_residues, use_sequence).map_err(|e| anyhow!("{e}"))?;
            ScorePass { logits: out.logits, log_probs: out.log_probs, decoding_order: out.decoding_order }
        }
        ScoreKind::SingleAa => {
            let out = model.net.single_aa_score(enc, f, &randn, use_sequence);
            let decoding_order = (0..l).flat_map(|i| single_aa_order(i, &randn, use_sequence)).collect();
            ScorePass { logits: out.logits, log_probs: out.log_probs, decoding_order }
        }
    })
}
