//! Command-line arguments: idiomatic subcommands plus the official `protein_mpnn_run.py` flags
//! as accepted spellings, so `mpnn` is a drop-in for the official script.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mpnn::bucket::Buckets;
use mpnn::kernels::precision::Precision;
use mpnn::preset::Preset;

#[derive(Debug, Parser)]
#[command(
    name = "mpnn",
    version,
    about = "ProteinMPNN in Rust: the official model's numbers, fast, with friendlier inputs.",
    long_about = "ProteinMPNN in Rust: the official model's numbers, fast, with friendlier inputs.\n\n\
        Run a subcommand (design, score, probs, convert, bench, eval: see Commands below; \
        `mpnn COMMAND --help` for its flags), or run with no subcommand and the official \
        protein_mpnn_run.py flags (--pdb_path, \
        --out_folder, --score_only 1, ...) to get exactly the official script's behaviour and \
        output files.",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  mpnn design 5L33.pdb --out out/ --num_seq_per_target 8\n  \
        mpnn score 5L33.pdb --out out/\n  mpnn probs --unconditional 5L33.pdb --out out/\n  \
        mpnn --pdb_path 5L33.pdb --out_folder out/ --score_only 1 --num_seq_per_target 10\n  \
        mpnn convert v_48_020.pt v_48_020.safetensors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The official script's flags (used when no subcommand is given).
    #[command(flatten)]
    pub official: Official,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a structure's own sequence, and sequences from a FASTA.
    ///
    /// The official `score`/`global_score`: the mean negative log-likelihood over the designed /
    /// all residues.
    Score(ScoreArgs),
    /// Per-position log-probabilities, unconditional or conditional.
    ///
    /// Unconditional: backbone only, one pass. Conditional: each position given the rest of the
    /// sequence, or given the backbone only.
    Probs(ProbsArgs),
    /// Design sequences for backbones (the official default job).
    ///
    /// A FASTA per structure, with optional scores, probabilities, threaded PDBs and a run table.
    Design(Box<DesignArgs>),
    /// Convert a checkpoint (official .pt or safetensors) to safetensors.
    Convert(ConvertArgs),
    /// Benchmark scoring and design speed.
    ///
    /// Over the parity structures and synthetic backbones.
    Bench(super::bench::BenchArgs),
    /// Measure what each speed/accuracy variant costs against the exact model.
    ///
    /// Presets × precisions on your structures: recovery, perplexity, top-1 agreement,
    /// |Δ log p|, KL, designed recovery and speed; a table, JSON and an SVG plot.
    Eval(Box<super::eval::EvalArgs>),
    /// Write an sbatch script that runs a design as a Slurm job array (one shard per task).
    ///
    /// `mpnn slurm --tasks 4 --time 2:00:00 -- design --list inputs.txt --out OUT --seed 37 ...`:
    /// task I of --array=1-N runs the design command with --shard I/N and its own run table.
    /// Default script: OUT/slurm/mpnn.sbatch (logs in OUT/slurm/logs, tables in OUT/slurm/tables).
    Slurm(Box<super::cluster::SlurmArgs>),
    /// How far a design run into OUT has come: complete structures, missing ones and their shards.
    ///
    /// Reads OUT/.mpnn-run.json (written by every design task when it starts), the FASTA files
    /// and their parameter records. Exit status 0 when every structure is complete, 2 when some
    /// are missing (1: an error).
    Status(super::cluster::StatusArgs),
    /// Merge the run tables of several shards (--table) into one CSV or JSON-lines table.
    #[command(name = "merge-tables")]
    MergeTables(super::cluster::MergeArgs),
    /// LigandMPNN's scripts: `mpnn ligandmpnn run` (run.py) and `mpnn ligandmpnn score`
    /// (score.py), with their flags and output files.
    ///
    /// The five LigandMPNN-family models (ligand_mpnn, protein_mpnn, soluble_mpnn,
    /// per_residue_label_membrane_mpnn, global_label_membrane_mpnn) in LigandMPNN's checkpoint
    /// layout; e.g. `mpnn ligandmpnn run --model_type ligand_mpnn --pdb_path 1BC8.pdb
    /// --out_folder out/`.
    #[command(subcommand)]
    Ligandmpnn(super::ligandmpnn::args::LigandCommand),
}

/// Inputs, model and run options shared by every job.
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// Structures to process: PDB or mmCIF files (optionally .gz), parsed_pdbs.jsonl files,
    /// directories (every structure file inside), or glob patterns.
    #[arg(value_name = "STRUCTURE")]
    pub structures: Vec<String>,
    /// A single structure (official spelling).
    #[arg(long = "pdb_path", value_name = "FILE", hide_short_help = true)]
    pub pdb_path: Option<String>,
    /// Parsed structures in the official jsonl format (official spelling).
    #[arg(long = "jsonl_path", value_name = "FILE", hide_short_help = true)]
    pub jsonl_path: Option<String>,
    /// A file listing structure paths (files, folders or globs), one per line ('#' comments).
    #[arg(long = "list", value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Output folder.
    #[arg(long = "out", visible_alias = "out_folder", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Chains to design, e.g. "A,C" (others are kept fixed). Default: all chains.
    #[arg(long = "chains", visible_alias = "pdb_path_chains", value_name = "CHAINS")]
    pub chains: Option<String>,
    /// Official chain dictionary: a jsonl file mapping name → [designed, fixed] chain lists.
    #[arg(long = "chain_id_jsonl", value_name = "FILE")]
    pub chain_id_jsonl: Option<String>,
    /// Official fixed-positions dictionary (jsonl file): name → chain → 1-based positions kept
    /// fixed (excluded from design and from `score`).
    #[arg(long = "fixed_positions_jsonl", value_name = "FILE")]
    pub fixed_positions_jsonl: Option<String>,
    /// Weights file (.pt or .safetensors). Default: the official weights, from
    /// --path_to_model_weights, $MPNN_WEIGHTS, the cache, or a verified download.
    #[arg(long = "weights", value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Folder holding <model_name>.pt (official spelling).
    #[arg(long = "path_to_model_weights", value_name = "DIR")]
    pub path_to_model_weights: Option<PathBuf>,
    /// Official model name: v_48_002, v_48_010, v_48_020, v_48_030.
    #[arg(long = "model_name", visible_alias = "model-name", default_value = "v_48_020")]
    pub model_name: String,
    /// CA-only model and parsing.
    #[arg(long = "ca_only", visible_alias = "ca-only")]
    pub ca_only: bool,
    /// Use the soluble-protein weights.
    #[arg(long = "use_soluble_model", visible_alias = "soluble")]
    pub use_soluble_model: bool,
    /// Never download weights; fail with instructions instead.
    #[arg(long)]
    pub offline: bool,
    /// Random seed (0 = pick one and print it, like the official script).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sequences per structure (official --num_seq_per_target): for design, the number of
    /// sequences designed per temperature; for score and probs, the number of passes (each with
    /// its own random decoding order).
    #[arg(long = "num_seq_per_target", visible_alias = "num-seq", default_value_t = 1)]
    pub num_seq_per_target: usize,
    /// Sequences per batch (official --batch_size).
    #[arg(long = "batch_size", visible_alias = "batch-size", default_value_t = 1)]
    pub batch_size: usize,
    /// Skip structures longer than this (official --max_length).
    #[arg(long = "max_length", default_value_t = 200000)]
    pub max_length: usize,
    /// 1 = print nothing but errors (official --suppress_print).
    #[arg(long = "suppress_print", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub suppress_print: IntFlag,
    /// Worker threads (default: $SLURM_CPUS_PER_TASK when set, else all cores). Results are
    /// identical for any value.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Neighbours per residue at inference time (default: the checkpoint's own k). Below the
    /// checkpoint's k this is an approximation of that model (the seeds' "fast" k = 16 and
    /// "balanced" k = 32); mpnn warns, and its accuracy cost must be measured.
    #[arg(long = "k", value_name = "N")]
    pub k: Option<usize>,
    /// Number format of the dense layers: f32 (default, the exact model), bf16, f16 (rounded
    /// weights and layer inputs, float32 sums) or int8 (per-channel int8 weights, exact int32
    /// sums; on CPUs with VNNI (AVX-512 VNNI or AVX-VNNI), W8A8: the per-edge layers take uint8 inputs quantized
    /// per row with a zero point, the feed-forwards 12-bit and the other per-node layers stay float32; elsewhere W8A16: layer
    /// inputs quantized per row to int16). Coordinates and neighbours always stay float32.
    /// Anything but f32 is an approximation; `mpnn eval` measures it.
    #[arg(long, value_name = "f32|bf16|f16|int8")]
    pub precision: Option<Precision>,
    /// A named speed/accuracy variant (architecture + k + batch + precision): baseline, fast
    /// (k 16), balanced (k 32) on a full checkpoint; minimal (k 48), minimal-fast, ultimate, extreme
    /// (k 16) on a pruned one. Explicit --k / --precision win over the preset's.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<Preset>,
    /// Where the network runs: auto (a hardware GPU when one is usable, else the CPU), cpu, or
    /// gpu (wgpu on Vulkan, Metal or DX12; an error when no GPU is usable; a software Vulkan
    /// device such as lavapipe only with MPNN_ALLOW_SOFTWARE_GPU=1). GPU results match the CPU's
    /// to ~1e-5.
    #[arg(long, value_name = "auto|cpu|gpu", default_value = "auto")]
    pub device: mpnn::device::DeviceChoice,
    #[command(flatten)]
    pub ligand: LigandFlags,
}

/// LigandMPNN-family models (`--model_type`, or a checkpoint with atom-context tensors) and
/// their context and membrane flags, as LigandMPNN's `run.py` spells them.
#[derive(Debug, Args, Clone, Default)]
pub struct LigandFlags {
    /// Run the --weights checkpoint as this LigandMPNN model: ligand_mpnn, protein_mpnn,
    /// soluble_mpnn, per_residue_label_membrane_mpnn, global_label_membrane_mpnn. Default: a
    /// checkpoint with atom-context tensors runs as ligand_mpnn, others as ProteinMPNN. With a
    /// LigandMPNN model, structures are read with LigandMPNN's parser (context atoms kept) and
    /// residue specs name residues as LigandMPNN does: chain + number + insertion code (B52A).
    #[arg(long = "model_type", value_name = "TYPE", value_parser = model_type)]
    pub model_type: Option<mpnn::ligand::ModelType>,
    /// ligand_mpnn: 1 = read the context atoms (default), 0 = ignore them.
    #[arg(long = "ligand_mpnn_use_atom_context", default_value = "1", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub use_atom_context: IntFlag,
    /// Residues whose nearest context atom is closer than this (Å) count for ligand_confidence
    /// (and for the warning that a model ignores context atoms).
    #[arg(
        long = "ligand_mpnn_cutoff_for_score",
        default_value_t = 8.0,
        value_name = "ANGSTROM",
        allow_negative_numbers = true
    )]
    pub cutoff_for_score: f32,
    /// ligand_mpnn: 1 = side-chain atoms of fixed residues are context too.
    #[arg(long = "ligand_mpnn_use_side_chain_context", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub use_side_chain_context: IntFlag,
    /// 1 = keep atoms with zero occupancy (LigandMPNN's parser drops them by default).
    #[arg(long = "parse_atoms_with_zero_occupancy", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub zero_occupancy: IntFlag,
    /// per_residue_label_membrane_mpnn: buried residues, e.g. "A10 A11 B52A".
    #[arg(long = "transmembrane_buried", value_name = "RESIDUES", default_value = "")]
    pub transmembrane_buried: String,
    /// per_residue_label_membrane_mpnn: interface residues.
    #[arg(long = "transmembrane_interface", value_name = "RESIDUES", default_value = "")]
    pub transmembrane_interface: String,
    /// global_label_membrane_mpnn: 1 = transmembrane, 0 = soluble.
    #[arg(long = "global_transmembrane_label", default_value_t = 0, value_name = "0|1")]
    pub global_transmembrane_label: i32,
}

fn model_type(s: &str) -> Result<mpnn::ligand::ModelType, String> {
    s.trim().parse()
}

/// How scoring and probability jobs group structures for the model. Every setting gives the
/// same output files, byte for byte; only speed and memory change.
#[derive(Debug, Args, Clone, Default)]
pub struct Batching {
    /// Length buckets for --structure_batch: inclusive upper bounds, e.g. "64,128,256,512,1024"
    /// (the default; longer structures form one more bucket), or "quantiles:N" for N buckets
    /// split at the quantiles of this run's lengths ("quantiles:1": one bucket). Only
    /// structures of one bucket run together, padded to the longest of them.
    #[arg(long, value_name = "SPEC")]
    pub buckets: Option<Buckets>,
    /// Run up to N structures of one length bucket (--buckets) together as one batch, padded
    /// with masks to the longest of them (default 1: one at a time, the fastest on CPUs). Output
    /// files are identical for every setting. Structures shorter than the model's k only batch
    /// with structures of their own length.
    #[arg(long = "structure_batch", visible_alias = "structure-batch", value_name = "N", value_parser = structure_batch)]
    pub structure_batch: Option<usize>,
}

impl Batching {
    pub fn is_set(&self) -> bool {
        self.buckets.is_some() || self.structure_batch.is_some()
    }
}

/// What to do with input structures that cannot be used.
#[derive(Debug, Args, Clone, Default)]
pub struct Skip {
    /// Skip input structures that cannot be used (unreadable, invalid, or failing a constraint)
    /// and process the rest; they are listed on stderr and in skipped.tsv (design: OUT/skipped.tsv;
    /// score / probs: in their output subfolder). Default: stop before any work, listing every
    /// bad input. With every input invalid the run fails either way.
    #[arg(long = "skip-invalid", visible_alias = "skip_invalid")]
    pub skip_invalid: bool,
}

/// An official 0/1 flag (`--score_only 1`, `--save_probs 1`, ...). The official script reads
/// these with `type=int` and tests them for truth, so any whole number but 0 means on
/// (`--score_only 2` scores); anything that is not a whole number is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntFlag(pub bool);

impl IntFlag {
    /// Whether the flag is on (non-zero).
    pub fn on(self) -> bool {
        self.0
    }
}

/// `1` or `0`: the flag's meaning, whatever number turned it on.
impl std::fmt::Display for IntFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "1" } else { "0" })
    }
}

/// Parses an [`IntFlag`] the way Python's `int()` reads a whole number: surrounding spaces, an
/// optional sign, digits (any size).
pub fn int_flag(s: &str) -> Result<IntFlag, String> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{s}` is not a whole number; give 1 (on) or 0 (off), as in the official script"));
    }
    Ok(IntFlag(digits.chars().any(|c| c != '0')))
}

fn structure_batch(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("a batch of 0 structures runs nothing; give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of structures; give a whole number, at least 1")),
    }
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub batching: Batching,
    #[command(flatten)]
    pub skip: Skip,
    /// Also score the sequences of this FASTA (chains of a record joined by '/').
    #[arg(long = "fasta", visible_alias = "path_to_fasta", value_name = "FILE")]
    pub fasta: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProbsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub batching: Batching,
    #[command(flatten)]
    pub skip: Skip,
    /// One pass with every neighbour seen through the backbone only.
    #[arg(long, conflicts_with = "conditional")]
    pub unconditional: bool,
    /// Each designed position given the rest of the native sequence.
    #[arg(long)]
    pub conditional: bool,
    /// With --conditional: each position given the backbone only.
    #[arg(long = "backbone-only", requires = "conditional")]
    pub backbone_only: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input checkpoint (.pt or .safetensors).
    pub input: PathBuf,
    /// Output .safetensors file.
    pub output: PathBuf,
}

/// The official script's job flags (with the [`Common`] ones).
#[derive(Debug, Args, Default)]
pub struct Official {
    #[command(flatten)]
    pub common: Common,
    /// 1 = score the input backbone-sequence pairs.
    #[arg(long = "score_only", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub score_only: IntFlag,
    /// Score these sequences too (with --score_only 1).
    #[arg(long = "path_to_fasta", value_name = "FILE")]
    pub path_to_fasta: Option<PathBuf>,
    /// 1 = write conditional probabilities p(s_i | rest of sequence, backbone).
    #[arg(long = "conditional_probs_only", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub conditional_probs_only: IntFlag,
    /// 1 = with --conditional_probs_only, condition on the backbone only.
    #[arg(long = "conditional_probs_only_backbone", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub conditional_probs_only_backbone: IntFlag,
    /// 1 = write unconditional probabilities p(s_i | backbone) in one pass.
    #[arg(long = "unconditional_probs_only", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub unconditional_probs_only: IntFlag,
    // with --score_only 1 / --*_probs_only 1
    #[command(flatten)]
    pub batching: Batching,
    #[command(flatten)]
    pub skip: Skip,
    #[command(flatten)]
    pub design: DesignOpts,
}

#[derive(Debug, Args)]
pub struct DesignArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub skip: Skip,
    #[command(flatten)]
    pub design: DesignOpts,
}

/// Sequence-design options: the official flags plus inline constraints.
#[derive(Debug, Args, Clone, Default)]
pub struct DesignOpts {
    /// Sampling temperatures, space separated (official --sampling_temp), e.g. "0.1 0.2".
    #[arg(
        long = "sampling_temp",
        visible_alias = "temperature",
        default_value = "0.1",
        value_name = "T...",
        allow_hyphen_values = true
    )]
    pub sampling_temp: String,
    /// Gaussian noise (Å, standard deviation) added to the backbone coordinates of each sample
    /// (0 to 10 Å; the official models were trained with 0.02-0.3).
    #[arg(long = "backbone_noise", default_value_t = 0.0, allow_negative_numbers = true)]
    pub backbone_noise: f32,
    /// Letters never sampled (official --omit_AAs).
    #[arg(long = "omit_AAs", default_value = "X", value_name = "LETTERS")]
    pub omit_aas: String,
    /// Official global amino-acid bias dictionary (jsonl file: {"A": -1.1, ...}).
    #[arg(long = "bias_AA_jsonl", value_name = "FILE")]
    pub bias_aa_jsonl: Option<String>,
    /// Official per-residue bias dictionary (jsonl file).
    #[arg(long = "bias_by_res_jsonl", value_name = "FILE")]
    pub bias_by_res_jsonl: Option<String>,
    /// Official per-residue omission dictionary (jsonl file).
    #[arg(long = "omit_AA_jsonl", value_name = "FILE")]
    pub omit_aa_jsonl: Option<String>,
    /// Official PSSM dictionary (jsonl file).
    #[arg(long = "pssm_jsonl", value_name = "FILE")]
    pub pssm_jsonl: Option<String>,
    /// PSSM weight between 0 (none) and 1 (PSSM only), with --pssm_bias_flag 1.
    #[arg(long = "pssm_multi", default_value_t = 0.0)]
    pub pssm_multi: f32,
    /// Letters with PSSM log-odds at or below this are (almost) excluded, with --pssm_log_odds_flag 1.
    #[arg(long = "pssm_threshold", default_value_t = 0.0)]
    pub pssm_threshold: f32,
    #[arg(long = "pssm_log_odds_flag", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub pssm_log_odds_flag: IntFlag,
    #[arg(long = "pssm_bias_flag", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub pssm_bias_flag: IntFlag,
    /// Official tied-positions dictionary (jsonl file).
    #[arg(long = "tied_positions_jsonl", value_name = "FILE")]
    pub tied_positions_jsonl: Option<String>,
    /// 1 = write scores/NAME.npz (score, global_score per sample).
    #[arg(long = "save_score", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub save_score: IntFlag,
    /// 1 = write probs/NAME.npz (probs, log_probs, S, mask, chain_order, decoding_order).
    #[arg(long = "save_probs", default_value = "0", value_name = "0|1", value_parser = int_flag, allow_negative_numbers = true)]
    pub save_probs: IntFlag,
    /// Keep these residues fixed, e.g. "A1-10 A15 B" (a chain letter alone = the whole chain).
    /// Positions are 1-based within the chain as parsed.
    #[arg(long, value_name = "SPEC")]
    pub fixed: Option<String>,
    /// Design only these residues of the designed chains, e.g. "A20-30" (everything else in the
    /// designed chains is fixed). A position both here and in --fixed is an error.
    #[arg(long, value_name = "SPEC")]
    pub redesign: Option<String>,
    /// Tie residues: groups by '|', members by ',': "A1,C1|A2,C2"; ranges tie elementwise
    /// ("A1-10,C1-10"). Optional weight per group member is not supported inline (use
    /// --tied_positions_jsonl).
    #[arg(long, value_name = "SPEC")]
    pub tied: Option<String>,
    /// Tie position i of every designed chain (all designed chains must have equal length).
    #[arg(long = "homo-oligomer", visible_alias = "homo_oligomer")]
    pub homo_oligomer: bool,
    /// Global amino-acid bias, e.g. "W:3.0,P:-1" (added to --bias_AA_jsonl).
    #[arg(long, value_name = "L:V,...")]
    pub bias: Option<String>,
    /// Letters never sampled, in addition to --omit_AAs, e.g. "C".
    #[arg(long, value_name = "LETTERS")]
    pub omit: Option<String>,
    /// Per-residue bias JSON file: {"A12": {"W": 2.0}} (keys may be ranges or chains).
    #[arg(long = "bias-by-residue", value_name = "FILE")]
    pub bias_by_residue: Option<String>,
    /// Per-residue omissions JSON file: {"A12": "CP"}.
    #[arg(long = "omit-by-residue", value_name = "FILE")]
    pub omit_by_residue: Option<String>,
    /// Process only shard I of N (1-based): structure k of the name-sorted list goes to shard
    /// (k mod N) + 1 (round-robin). `auto`: this Slurm array task's shard, from
    /// SLURM_ARRAY_TASK_ID and the array's MIN/MAX/STEP/COUNT (the default, said on stderr, when
    /// SLURM_ARRAY_TASK_ID is set and --shard is not given).
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Redo structures whose seqs/NAME.fa is already complete. Default: skip those designed with
    /// the same parameters and stop (before writing anything) if any was designed with others.
    #[arg(long)]
    pub overwrite: bool,
    /// Write structures/NAME_sample_N.pdb: each design threaded onto the backbone.
    #[arg(long = "save-structures")]
    pub save_structures: bool,
    /// Write a table of every design of the run (.csv, or .jsonl for JSON lines).
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Cascade screening: sample with this preset's (faster) configuration, rescore every
    /// sample with the main model (the weights, --k and --precision given), and keep the --keep
    /// best by the main model's score. Headers carry both scores.
    #[arg(long, value_name = "PRESET", requires = "keep")]
    pub screen: Option<Preset>,
    /// With --screen: how many sequences to keep per structure (out of the
    /// --num_seq_per_target × temperatures generated), best main-model score first.
    #[arg(long, value_name = "N", requires = "screen")]
    pub keep: Option<usize>,
    /// With --screen: the checkpoint the screening preset runs (needed for the pruned presets;
    /// default: the main checkpoint).
    #[arg(long = "screen-weights", value_name = "FILE", requires = "screen")]
    pub screen_weights: Option<PathBuf>,
}
