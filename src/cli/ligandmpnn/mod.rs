//! `mpnn ligandmpnn run|score`: drop-in replacements for LigandMPNN's `run.py` and `score.py`
//! (same flags, same defaults, same output files).

pub mod args;
pub mod engine;
pub mod inputs;
pub mod run;
pub mod score;

use anyhow::Result;

pub fn dispatch(cmd: &args::LigandCommand) -> Result<()> {
    match cmd {
        args::LigandCommand::Run(a) => run::run(a),
        args::LigandCommand::Score(a) => score::run(a),
    }
}
