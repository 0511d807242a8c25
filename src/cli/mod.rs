//! The `mpnn` command line: argument definitions and one module per job.

pub mod args;
pub mod batching;
pub mod bench;
pub mod cluster;
pub mod common;
pub mod design;
pub mod eval;
pub mod ligandmpnn;
pub mod native_ligand;
pub mod probs;
pub mod resume;
pub mod score;

use anyhow::{bail, Result};
use args::{Cli, Command};
use mpnn::checkpoint;

pub fn run(cli: Cli) -> Result<()> {
    // The kernels' instruction-set path, decided once (a bad MPNN_ISA stops here, before any work).
    let isa = mpnn::kernels::isa::init()?;
    if let Ok(plan) = std::env::var(mpnn::model::INT8_PLAN_ENV) {
        mpnn::model::check_int8_plan(&plan).map_err(anyhow::Error::msg)?;
    }
    tracing::info!(
        "kernels: {isa} path (available: {:?}); bf16 kernel: {}",
        mpnn::kernels::isa::Isa::available(),
        mpnn::kernels::bf16::kernel_name(isa)
    );
    match cli.command {
        Some(Command::Score(a)) => match native_ligand::model_for(&a.common)? {
            Some(m) => {
                refuse_batching(&a.batching)?;
                native_ligand::score(&a.common, a.fasta.as_deref(), &a.skip, m)
            }
            None => score::run(&a.common, a.fasta.as_deref(), &a.batching, &a.skip),
        },
        Some(Command::Probs(a)) => {
            let kind = if a.unconditional {
                probs::Kind::Unconditional
            } else if a.conditional {
                probs::Kind::Conditional { backbone_only: a.backbone_only }
            } else {
                bail!("say which probabilities: --unconditional or --conditional [--backbone-only]");
            };
            match native_ligand::model_for(&a.common)? {
                Some(m) => {
                    refuse_batching(&a.batching)?;
                    native_ligand::probs(&a.common, kind, &a.skip, m)
                }
                None => probs::run(&a.common, kind, &a.batching, &a.skip),
            }
        }
        Some(Command::Bench(a)) => bench::run(&a),
        Some(Command::Eval(a)) => eval::run(&a),
        Some(Command::Slurm(a)) => cluster::slurm(&a),
        Some(Command::Status(a)) => {
            if !cluster::status(&a)? {
                std::process::exit(2);
            }
            Ok(())
        }
        Some(Command::MergeTables(a)) => cluster::merge_tables(&a),
        Some(Command::Ligandmpnn(c)) => ligandmpnn::dispatch(&c),
        Some(Command::Design(a)) => match native_ligand::model_for(&a.common)? {
            Some(m) => native_ligand::design(&a.common, &a.design, &a.skip, m),
            None => design::run(&a.common, &a.design, &a.skip, design::Mode::Subcommand),
        },
        Some(Command::Convert(a)) => {
            let ckpt = checkpoint::load(&a.input)?;
            let arch = ckpt.architecture()?;
            checkpoint::save_safetensors(&ckpt, &a.output)?;
            println!(
                "wrote {} (hidden {}, {}+{} layers, k = {}, {})",
                a.output.display(),
                arch.hidden,
                arch.encoder_layers,
                arch.decoder_layers,
                arch.k,
                if arch.ca_only { "CA-only" } else { "full backbone" }
            );
            Ok(())
        }
        None => {
            let o = cli.official;
            if o.common.ligand.model_type.is_some() {
                bail!(
                    "--model_type runs LigandMPNN models through `mpnn design`, `mpnn score` and `mpnn probs` (or the \
                     drop-in `mpnn ligandmpnn run` / `score`); the official ProteinMPNN flags do not take it"
                );
            }
            if o.score_only.on() {
                score::run(&o.common, o.path_to_fasta.as_deref(), &o.batching, &o.skip)
            } else if o.conditional_probs_only.on() {
                probs::run(
                    &o.common,
                    probs::Kind::Conditional { backbone_only: o.conditional_probs_only_backbone.on() },
                    &o.batching,
                    &o.skip,
                )
            } else if o.unconditional_probs_only.on() {
                probs::run(&o.common, probs::Kind::Unconditional, &o.batching, &o.skip)
            } else if o.common.structures.is_empty() && o.common.pdb_path.is_none() && o.common.jsonl_path.is_none() {
                bail!("nothing to do: give a subcommand (mpnn --help) or the official flags (--pdb_path ... --out_folder ...)")
            } else if o.batching.is_set() {
                bail!(
                    "--buckets and --structure_batch group structures for scoring and probabilities \
                     (--score_only 1, --conditional_probs_only 1, --unconditional_probs_only 1); design does not take them"
                )
            } else {
                design::run(&o.common, &o.design, &o.skip, design::Mode::Official)
            }
        }
    }
}

/// `--buckets` / `--structure_batch` only group ProteinMPNN structures.
fn refuse_batching(b: &args::Batching) -> Result<()> {
    if b.is_set() {
        bail!("--buckets and --structure_batch are not supported with LigandMPNN models (each structure runs on its own); drop them");
    }
    Ok(())
}
