//! The output files of LigandMPNN's `run.py` and `score.py`, byte-compatible in layout:
//! [`fasta`] (`seqs/NAME.fa`), [`pdb`] (`backbones/NAME_N.pdb`), [`stats`] (`stats/NAME.pt` and
//! `score.py`'s `NAME.pt`) through the [`torch_save`] writer.

pub mod fasta;
pub mod pdb;
pub mod stats;
pub mod torch_save;
