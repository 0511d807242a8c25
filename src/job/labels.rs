//! How the caller spells each option, so that the library's error messages name the option the
//! user actually typed: `--fixed` on the command line, `fixed=` in Python.

/// The caller's names of the options the jobs check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub chains: &'static str,
    pub ca_only: &'static str,
    pub k: &'static str,
    pub precision: &'static str,
    pub fixed: &'static str,
    pub redesign: &'static str,
    pub tied: &'static str,
    pub homo_oligomer: &'static str,
    pub bias_by_residue: &'static str,
    pub omit_by_residue: &'static str,
    /// The global omitted letters (and every per-residue omission) together.
    pub omit: &'static str,
    /// The options that free or fix positions, listed in the "nothing is designable" hint.
    pub free_positions: &'static str,
    pub temperature: &'static str,
    pub num_seqs: &'static str,
    pub backbone_noise: &'static str,
    pub screen: &'static str,
    pub keep: &'static str,
    /// How to give weights of one's own (a file or a folder).
    pub own_weights: &'static str,
}

impl Labels {
    /// The command line's flags.
    pub const CLI: Labels = Labels {
        chains: "--chains or --chain_id_jsonl",
        ca_only: "--ca_only",
        k: "--k",
        precision: "--precision",
        fixed: "--fixed",
        redesign: "--redesign",
        tied: "--tied",
        homo_oligomer: "--homo-oligomer",
        bias_by_residue: "--bias-by-residue",
        omit_by_residue: "--omit-by-residue",
        omit: "--omit_AAs/--omit plus --omit_AA_jsonl/--omit-by-residue",
        free_positions: "--fixed, --redesign, --fixed_positions_jsonl",
        temperature: "--sampling_temp",
        num_seqs: "--num_seq_per_target",
        backbone_noise: "--backbone_noise",
        screen: "--screen",
        keep: "--keep",
        own_weights: crate::checkpoint::locate::OWN_WEIGHTS,
    };

    /// Keyword arguments (the Python package).
    pub const KEYWORDS: Labels = Labels {
        chains: "chains=",
        ca_only: "ca_only=True",
        k: "k=",
        precision: "precision=",
        fixed: "fixed=",
        redesign: "redesign=",
        tied: "tied=",
        homo_oligomer: "homo_oligomer=",
        bias_by_residue: "bias_by_residue=",
        omit_by_residue: "omit_by_residue=",
        omit: "omit= plus omit_by_residue=",
        free_positions: "fixed=, redesign=",
        temperature: "temperature=",
        num_seqs: "num_seqs=",
        backbone_noise: "backbone_noise=",
        screen: "screen=",
        keep: "keep=",
        own_weights: "a file path to Model.load, or weights_dir=DIR",
    };
}

impl Default for Labels {
    fn default() -> Self {
        Labels::CLI
    }
}
