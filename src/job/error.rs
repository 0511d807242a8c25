//! Why a job could not run: every error names the structure, the option and the fix.

use crate::checkpoint::CheckpointError;
use crate::featurize::FeaturizeError;
use crate::inputs::InputError;
use crate::model::ModelError;
use crate::pipeline::BatchError;
use crate::preset::PresetError;
use crate::structure::StructureError;

/// Why a job (loading a model, preparing a structure, designing, scoring) could not run.
///
/// `option` fields hold the option's name as the caller spells it ([`Labels`](super::Labels)):
/// `--fixed` on the command line, `fixed=` in Python.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Featurize(#[from] FeaturizeError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Structure(#[from] StructureError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("{path}: this is a CA-only checkpoint; add {ca_only}")]
    WantsCaOnly { path: String, ca_only: &'static str },
    #[error(
        "{path}: this is a full-backbone checkpoint but {ca_only} was given; drop {ca_only} or use CA-only weights"
    )]
    WantsFullBackbone { path: String, ca_only: &'static str },
    /// LigandMPNN-family models: a bad input (unknown residue id, malformed dictionary, ...)
    /// or a checkpoint that does not fit, said in full.
    #[error("{0}")]
    Ligand(String),
    #[error("{option} must be at least 1")]
    ZeroK { option: &'static str },
    /// An option's value is out of range; `why` says the range.
    #[error("{option} {value}: {why}")]
    BadValue { option: &'static str, value: String, why: String },
    #[error("{structure}: chain `{chain}` is not in the structure (its chains are: {chains}); fix {option}")]
    UnknownChain { structure: String, option: &'static str, chain: String, chains: String },
    #[error("{option}: `{item}`: chain {chain} is not in {structure} (its chains are: {chains}); fix the spec")]
    SpecChain { option: &'static str, item: String, chain: String, structure: String, chains: String },
    #[error(
        "{option}: `{item}`: position {position} is outside chain {chain} of {structure} (it has positions 1-{len}; \
         positions are 1-based within the chain as parsed)"
    )]
    SpecPosition { option: &'static str, item: Box<str>, position: u32, chain: Box<str>, structure: String, len: usize },
    #[error(
        "{option}: `{item}`: chain {chain} of {structure} is not designed (designed: {designed}); add it to {chains} \
         or drop it"
    )]
    RedesignFixedChain {
        option: &'static str,
        item: Box<str>,
        chain: String,
        structure: String,
        designed: Box<str>,
        chains: &'static str,
    },
    #[error(
        "{fixed} and {redesign} both name {chain}{position} of {structure}: a residue cannot be fixed and \
         redesigned; remove it from one of them"
    )]
    FixedAndRedesigned { fixed: &'static str, redesign: &'static str, chain: String, position: i64, structure: String },
    #[error(
        "{option}: group `{group}` of {structure} ties members of unequal length: {lengths}; give each member \
         the same number of positions"
    )]
    TiedUnequal { option: &'static str, group: String, structure: String, lengths: String },
    #[error(
        "{option}: the designed chains of {structure} have unequal lengths ({lengths}); design chains of equal \
         length ({chains}) or drop {option}"
    )]
    HomoOligomerUnequal { option: &'static str, structure: String, lengths: String, chains: &'static str },
    #[error("{structure}: no chain is designed; name the chains to design ({chains})")]
    NoChainDesigned { structure: String, chains: &'static str },
    #[error(
        "{structure}: nothing is designable: every residue of the designed chains ({designed}) is fixed or lacks \
         backbone coordinates; free some positions ({free}) or design other chains"
    )]
    NothingDesignable { structure: String, designed: String, free: &'static str },
    #[error(
        "{structure}: at designed position{plural} {positions} every amino acid is omitted ({omit}), so nothing \
         could be sampled; allow at least one letter there or fix the position"
    )]
    FullyOmitted { structure: String, plural: &'static str, positions: String, omit: &'static str },
    #[error(
        "{omit} \"{letters}\": every amino acid is omitted, so nothing could be sampled; leave at least one of \
         {allowed} allowed"
    )]
    AllOmitted { omit: &'static str, letters: String, allowed: &'static str },
    #[error(
        "{origin}: {what} has {found} residues, but {structure} has {designed} designed residues ({len} in all); \
         give the designed chains' sequence (chains in order {chains})"
    )]
    SequenceLength {
        origin: String,
        structure: String,
        what: Box<str>,
        found: usize,
        designed: usize,
        len: usize,
        chains: Box<str>,
    },
    #[error("{origin}: {what} position {position}: `{letter}` is not one of {alphabet}")]
    SequenceLetter { origin: String, what: String, position: usize, letter: char, alphabet: &'static str },
}
