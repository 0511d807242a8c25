//! The flags of LigandMPNN's `run.py` and `score.py`, with their official spellings and defaults.

use clap::{Args, Subcommand};

use crate::cli::args::{int_flag, IntFlag};

/// `mpnn ligandmpnn run|score`.
#[derive(Debug, Subcommand)]
pub enum LigandCommand {
    /// Design sequences: LigandMPNN's `run.py`, same flags, same output files
    /// (OUT/seqs/NAME.fa, OUT/backbones/NAME_N.pdb, OUT/stats/NAME.pt with --save_stats 1).
    #[command(infer_long_args = true, args_override_self = true)]
    Run(Box<RunArgs>),
    /// Score native sequences: LigandMPNN's `score.py`, same flags, same output file
    /// (OUT/NAME.pt).
    #[command(infer_long_args = true, args_override_self = true)]
    Score(Box<ScoreArgs>),
}

pub use mpnn::ligand::ModelType;

/// `--model_type`: one of the five official names.
fn model_type(s: &str) -> Result<ModelType, String> {
    ModelType::ALL.into_iter().find(|t| t.as_str() == s.trim()).ok_or_else(|| {
        let names: Vec<&str> = ModelType::ALL.iter().map(|t| t.as_str()).collect();
        format!("`{s}` is not a model type; choose one of {}", names.join(", "))
    })
}

fn whole_number(s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().map_err(|_| format!("`{s}` is not a whole number"))
}

fn float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v: f64 = match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        "nan" => f64::NAN,
        _ => t.replace('_', "").parse().map_err(|_| format!("`{s}` is not a number"))?,
    };
    Ok(v)
}

/// The official default `--checkpoint_<model_type>` paths.
pub const DEFAULT_CHECKPOINT_PROTEIN: &str = "./model_params/proteinmpnn_v_48_020.pt";
pub const DEFAULT_CHECKPOINT_LIGAND: &str = "./model_params/ligandmpnn_v_32_010_25.pt";
pub const DEFAULT_CHECKPOINT_PER_RESIDUE_MEMBRANE: &str = "./model_params/per_residue_label_membrane_mpnn_v_48_020.pt";
pub const DEFAULT_CHECKPOINT_GLOBAL_MEMBRANE: &str = "./model_params/global_label_membrane_mpnn_v_48_020.pt";
pub const DEFAULT_CHECKPOINT_SOLUBLE: &str = "./model_params/solublempnn_v_48_020.pt";

/// The official default checkpoint path of `model_type` (`./model_params/<file>`).
pub fn default_checkpoint(model_type: ModelType) -> &'static str {
    match model_type {
        ModelType::ProteinMpnn => DEFAULT_CHECKPOINT_PROTEIN,
        ModelType::LigandMpnn => DEFAULT_CHECKPOINT_LIGAND,
        ModelType::PerResidueLabelMembraneMpnn => DEFAULT_CHECKPOINT_PER_RESIDUE_MEMBRANE,
        ModelType::GlobalLabelMembraneMpnn => DEFAULT_CHECKPOINT_GLOBAL_MEMBRANE,
        ModelType::SolubleMpnn => DEFAULT_CHECKPOINT_SOLUBLE,
    }
}

/// The model and checkpoint flags both scripts share.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Choose your model: protein_mpnn, ligand_mpnn, per_residue_label_membrane_mpnn,
    /// global_label_membrane_mpnn, soluble_mpnn.
    #[arg(long = "model_type", value_parser = model_type, default_value = "protein_mpnn")]
    pub model_type: ModelType,
    /// Path to model weights (protein_mpnn).
    #[arg(long = "checkpoint_protein_mpnn", default_value = DEFAULT_CHECKPOINT_PROTEIN)]
    pub checkpoint_protein_mpnn: String,
    /// Path to model weights (ligand_mpnn).
    #[arg(long = "checkpoint_ligand_mpnn", default_value = DEFAULT_CHECKPOINT_LIGAND)]
    pub checkpoint_ligand_mpnn: String,
    /// Path to model weights (per_residue_label_membrane_mpnn).
    #[arg(
        long = "checkpoint_per_residue_label_membrane_mpnn",
        default_value = DEFAULT_CHECKPOINT_PER_RESIDUE_MEMBRANE
    )]
    pub checkpoint_per_residue_label_membrane_mpnn: String,
    /// Path to model weights (global_label_membrane_mpnn).
    #[arg(
        long = "checkpoint_global_label_membrane_mpnn",
        default_value = DEFAULT_CHECKPOINT_GLOBAL_MEMBRANE
    )]
    pub checkpoint_global_label_membrane_mpnn: String,
    /// Path to model weights (soluble_mpnn).
    #[arg(long = "checkpoint_soluble_mpnn", default_value = DEFAULT_CHECKPOINT_SOLUBLE)]
    pub checkpoint_soluble_mpnn: String,
}

impl ModelArgs {
    /// The checkpoint path `--model_type` selects, as given.
    pub fn checkpoint(&self) -> &str {
        match self.model_type {
            ModelType::ProteinMpnn => &self.checkpoint_protein_mpnn,
            ModelType::LigandMpnn => &self.checkpoint_ligand_mpnn,
            ModelType::PerResidueLabelMembraneMpnn => &self.checkpoint_per_residue_label_membrane_mpnn,
            ModelType::GlobalLabelMembraneMpnn => &self.checkpoint_global_label_membrane_mpnn,
            ModelType::SolubleMpnn => &self.checkpoint_soluble_mpnn,
        }
    }
}

/// Inputs, residue selection and parsing flags both scripts share.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// 1 = print what is done (0 = quiet).
    #[arg(long = "verbose", default_value = "1", value_parser = int_flag, allow_negative_numbers = true)]
    pub verbose: IntFlag,
    /// Path to the input PDB.
    #[arg(long = "pdb_path", default_value = "")]
    pub pdb_path: String,
    /// Path to json listing PDB paths. {'/path/to/pdb': ''} - only keys will be used.
    #[arg(long = "pdb_path_multi", default_value = "")]
    pub pdb_path_multi: String,
    /// Provide fixed residues, A12 A13 A14 B2 B25.
    #[arg(long = "fixed_residues", default_value = "", allow_hyphen_values = true)]
    pub fixed_residues: String,
    /// Path to json mapping of fixed residues for each pdb i.e., {'/path/to/pdb': 'A12 A13 A14 B2 B25'}.
    #[arg(long = "fixed_residues_multi", default_value = "")]
    pub fixed_residues_multi: String,
    /// Provide to be redesigned residues, everything else will be fixed, A12 A13 A14 B2 B25.
    #[arg(long = "redesigned_residues", default_value = "", allow_hyphen_values = true)]
    pub redesigned_residues: String,
    /// Path to json mapping of redesigned residues for each pdb i.e., {'/path/to/pdb': 'A12 A13 A14 B2 B25'}.
    #[arg(long = "redesigned_residues_multi", default_value = "")]
    pub redesigned_residues_multi: String,
    /// Add list of lists for which residues need to be symmetric, e.g. 'A12,A13,A14|C2,C3|A5,B6'.
    #[arg(long = "symmetry_residues", default_value = "")]
    pub symmetry_residues: String,
    /// 1 = set --symmetry_residues and --symmetry_weights for homo-oligomer design with equal weights.
    #[arg(long = "homo_oligomer", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub homo_oligomer: IntFlag,
    /// Path to a folder to output to, e.g. /home/out/.
    #[arg(long = "out_folder", required = true)]
    pub out_folder: String,
    /// Adding string to the end of output file names.
    #[arg(long = "file_ending", default_value = "", allow_hyphen_values = true)]
    pub file_ending: String,
    /// 1 = number the designs (FASTA ids, backbone file names) from 0.
    #[arg(long = "zero_indexed", default_value = "0")]
    pub zero_indexed: String,
    /// Seed for the random numbers (0 = pick one at random and report it).
    #[arg(long = "seed", default_value = "0", value_parser = whole_number, allow_negative_numbers = true)]
    pub seed: i64,
    /// Number of sequences to generate per one pass.
    #[arg(long = "batch_size", default_value = "1", value_parser = whole_number, allow_negative_numbers = true)]
    pub batch_size: i64,
    /// Number of times to design sequence using a chosen batch size.
    #[arg(long = "number_of_batches", default_value = "1", value_parser = whole_number, allow_negative_numbers = true)]
    pub number_of_batches: i64,
    /// 1 = use atom context, 0 = do not use atom context.
    #[arg(long = "ligand_mpnn_use_atom_context", default_value = "1", value_parser = int_flag, allow_negative_numbers = true)]
    pub ligand_mpnn_use_atom_context: IntFlag,
    /// Cutoff in angstroms between protein and context atoms to select residues for reporting score.
    #[arg(long = "ligand_mpnn_cutoff_for_score", default_value = "8.0", value_parser = float, allow_negative_numbers = true)]
    pub ligand_mpnn_cutoff_for_score: f64,
    /// Flag to use side chain atoms as ligand context for the fixed residues.
    #[arg(long = "ligand_mpnn_use_side_chain_context", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub ligand_mpnn_use_side_chain_context: IntFlag,
    /// Provide chains letters for parsing backbones, 'A,B,C,F'.
    #[arg(long = "parse_these_chains_only", default_value = "")]
    pub parse_these_chains_only: String,
    /// Provide buried residues when using the per_residue_label_membrane_mpnn model, A12 A13 A14 B2 B25.
    #[arg(long = "transmembrane_buried", default_value = "")]
    pub transmembrane_buried: String,
    /// Provide interface residues when using the per_residue_label_membrane_mpnn model, A12 A13 A14 B2 B25.
    #[arg(long = "transmembrane_interface", default_value = "")]
    pub transmembrane_interface: String,
    /// Provide global label for the global_label_membrane_mpnn model. 1 - transmembrane, 0 - soluble.
    #[arg(long = "global_transmembrane_label", default_value = "0", value_parser = whole_number, allow_negative_numbers = true)]
    pub global_transmembrane_label: i64,
    /// To parse atoms with zero occupancy in the PDB input files. 0 - do not parse, 1 - parse.
    #[arg(long = "parse_atoms_with_zero_occupancy", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub parse_atoms_with_zero_occupancy: IntFlag,
}

impl InputArgs {
    /// `--zero_indexed 1`: designs numbered from 0 (the official help's meaning; any value but
    /// `0` and the empty string turns it on).
    pub fn zero_indexed(&self) -> bool {
        let t = self.zero_indexed.trim();
        !(t.is_empty() || t.parse::<i64>().map(|v| v == 0).unwrap_or(false))
    }
}

/// `run.py`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Symbol to use between sequences from different chains.
    #[arg(long = "fasta_seq_separation", default_value = ":", allow_hyphen_values = true)]
    pub fasta_seq_separation: String,
    /// Bias generation of amino acids, e.g. 'A:-1.024,P:2.34,C:-12.34'.
    #[arg(long = "bias_AA", default_value = "", allow_hyphen_values = true)]
    pub bias_aa: String,
    /// Path to json mapping of bias {'A12': {'G': -0.3, 'C': -2.0, 'H': 0.8}, 'A13': {'G': -1.3}}.
    #[arg(long = "bias_AA_per_residue", default_value = "")]
    pub bias_aa_per_residue: String,
    /// Path to json mapping of bias {'pdb_path': {'A12': {'G': -0.3, 'C': -2.0, 'H': 0.8}, 'A13': {'G': -1.3}}}.
    #[arg(long = "bias_AA_per_residue_multi", default_value = "")]
    pub bias_aa_per_residue_multi: String,
    /// Amino acids never to generate, e.g. 'ACG'.
    #[arg(long = "omit_AA", default_value = "")]
    pub omit_aa: String,
    /// Path to json mapping of omitted amino acids {'A12': 'APQ', 'A13': 'QST'}.
    #[arg(long = "omit_AA_per_residue", default_value = "")]
    pub omit_aa_per_residue: String,
    /// Path to json mapping of omitted amino acids {'pdb_path': {'A12': 'QSPC', 'A13': 'AGE'}}.
    #[arg(long = "omit_AA_per_residue_multi", default_value = "")]
    pub omit_aa_per_residue_multi: String,
    /// Add weights that match symmetry_residues, e.g. '1.01,1.0,1.0|-1.0,2.0|2.0,2.3'.
    #[arg(long = "symmetry_weights", default_value = "", allow_hyphen_values = true)]
    pub symmetry_weights: String,
    /// Temperature to sample sequences.
    #[arg(long = "temperature", default_value = "0.1", value_parser = float, allow_negative_numbers = true)]
    pub temperature: f64,
    /// 1 = save output statistics (OUT/stats/NAME.pt).
    #[arg(long = "save_stats", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub save_stats: IntFlag,
    /// Specify which chains to redesign, all others will be kept fixed, 'A,B,C,F'.
    #[arg(long = "chains_to_design", default_value = "")]
    pub chains_to_design: String,
    #[command(flatten)]
    pub packing: PackingArgs,
}

/// The side-chain packing flags of `run.py` (packing is not supported yet: `--pack_side_chains 1`
/// is refused before anything is written; the others are accepted and unused).
#[derive(Debug, Args)]
pub struct PackingArgs {
    /// 1 = run the side chain packer (not supported yet), 0 = do not run it.
    #[arg(long = "pack_side_chains", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub pack_side_chains: IntFlag,
    /// Path to the side chain packer's weights.
    #[arg(long = "checkpoint_path_sc", default_value = "./model_params/ligandmpnn_sc_v_32_002_16.pt")]
    pub checkpoint_path_sc: String,
    /// Number of independent side chain packing samples to return per design.
    #[arg(long = "number_of_packs_per_design", default_value = "4", value_parser = whole_number, allow_negative_numbers = true)]
    pub number_of_packs_per_design: i64,
    /// Number of denoising/recycling steps to make for side chain packing.
    #[arg(long = "sc_num_denoising_steps", default_value = "3", value_parser = whole_number, allow_negative_numbers = true)]
    pub sc_num_denoising_steps: i64,
    /// Number of samples to draw from a mixture distribution, keeping the most likely.
    #[arg(long = "sc_num_samples", default_value = "16", value_parser = whole_number, allow_negative_numbers = true)]
    pub sc_num_samples: i64,
    /// 1 = repack side chains of all residues including the fixed ones.
    #[arg(long = "repack_everything", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub repack_everything: IntFlag,
    /// To force ligand atoms to be written as HETATM to PDB file after packing.
    #[arg(long = "force_hetatm", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub force_hetatm: IntFlag,
    /// Suffix for packed PDB paths.
    #[arg(long = "packed_suffix", default_value = "_packed", allow_hyphen_values = true)]
    pub packed_suffix: String,
    /// 1 = pack side chains using ligand context, 0 = do not use it.
    #[arg(long = "pack_with_ligand_context", default_value = "1", value_parser = int_flag, allow_negative_numbers = true)]
    pub pack_with_ligand_context: IntFlag,
}

/// `score.py`'s flags.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Specify which chains to redesign, all others will be kept fixed (default: all chains).
    #[arg(long = "chains_to_design")]
    pub chains_to_design: Option<String>,
    /// 1 = get scores using amino acid sequence info; 0 = get scores using backbone info only.
    #[arg(long = "use_sequence", default_value = "1", value_parser = int_flag, allow_negative_numbers = true)]
    pub use_sequence: IntFlag,
    /// 1 = run the autoregressive scoring function: p(AA_1|backbone), p(AA_2|backbone, AA_1), ...
    #[arg(long = "autoregressive_score", default_value = "0", value_parser = int_flag, allow_negative_numbers = true)]
    pub autoregressive_score: IntFlag,
    /// 1 = run the single amino acid scoring function: p(AA_i|backbone, AA_{all except ith one}).
    #[arg(long = "single_aa_score", default_value = "1", value_parser = int_flag, allow_negative_numbers = true)]
    pub single_aa_score: IntFlag,
}
