//! `mpnn ligandmpnn score`: LigandMPNN's `score.py` (`--autoregressive_score 1` or
//! `--single_aa_score 1`), writing OUT/NAME.pt per structure.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::args::ScoreArgs;
use super::engine::{self, Model, RunRng, ScoreKind};
use super::inputs;
use super::run::{
    check_common, check_unique_names, checkpoint_path, note_replaced, parse_options, prepare_all, resolve_seed,
};
use mpnn::ligand::output::fasta;
use mpnn::ligand::output::stats::{ScoreOrders, ScoreStats};
use mpnn::ligand::output::torch_save::torch_save;

pub fn run(a: &ScoreArgs) -> Result<()> {
    check_common(&a.input)?;
    // score.py: autoregressive wins when both are on; neither is an error (it exits).
    let kind = if a.autoregressive_score.on() {
        ScoreKind::Autoregressive
    } else if a.single_aa_score.on() {
        ScoreKind::SingleAa
    } else {
        bail!("nothing to score: set either --autoregressive_score 1 or --single_aa_score 1");
    };
    let requests = inputs::score_requests(a)?;
    let pdbs: Vec<String> = requests.iter().map(|r| r.pdb.clone()).collect();
    inputs::check_structures_exist(&pdbs, &a.input)?;
    check_unique_names(&requests, "NAME.pt")?;
    let ckpt = checkpoint_path(&a.model)?;
    let model = Model::load(a.model.model_type, &ckpt, a.input.ligand_mpnn_use_side_chain_context.on())?;
    let opts = parse_options(&a.input, a.model.model_type);
    let mut prepared = prepare_all(&model, &requests, &opts)?;

    let seed = resolve_seed(a.input.seed);
    let base = PathBuf::from(&a.input.out_folder);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let rng = RunRng { seed: seed as u64 };
    for (i, r) in requests.iter().enumerate() {
        if a.input.verbose.on() {
            println!("Designing protein from this path: {}", r.pdb);
        }
        let p = prepared.take(i, &model, r, &opts)?;
        let enc = engine::encode(&model, &p).with_context(|| format!("encoding {}", r.pdb))?;
        let n = (a.input.number_of_batches * a.input.batch_size) as usize;
        let passes = (0..n)
            .map(|pass| engine::score(&model, &p, &enc, kind, a.use_sequence.on(), pass, &rng))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("scoring {}", r.pdb))?;
        let l = p.features.len();
        let decoding_order = match kind {
            ScoreKind::Autoregressive => {
                ScoreOrders::Autoregressive(passes.iter().map(|x| x.decoding_order.clone()).collect())
            }
            ScoreKind::SingleAa => ScoreOrders::SingleAa(
                passes.iter().map(|x| x.decoding_order.chunks(l.max(1)).map(|c| c.to_vec()).collect()).collect(),
            ),
        };
        let stats = ScoreStats {
            logits: passes.iter().map(|x| x.logits.clone()).collect(),
            log_probs: passes.iter().map(|x| x.log_probs.clone()).collect(),
            decoding_order,
            native_sequence: p.features.s.clone(),
            mask: p.features.mask.clone(),
            chain_mask: p.features.chain_mask.clone(),
            chain_mask_dtype: p.chain_mask_dtype,
            seed,
            residue_names: p.residue_ids.clone(),
        };
        let path = base.join(format!("{}{}.pt", fasta::structure_name(&r.pdb), a.input.file_ending));
        note_replaced(std::slice::from_ref(&path));
        torch_save(&stats.to_py(), &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
