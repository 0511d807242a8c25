//! `--buckets` / `--structure_batch`: running a job's structures in length-bucketed, padded
//! batches, and handing each structure's results on in input order.

use anyhow::Result;
use mpnn::bucket::{Group, Router};
use mpnn::pipeline::Workspace;

use super::args::Batching;

/// The router for a run with these structure lengths and a model with `k` neighbours.
pub fn router(b: &Batching, lengths: &[usize], k: usize) -> Result<Router> {
    let spec = b.buckets.clone().unwrap_or_default();
    Ok(Router::new(spec.resolve(lengths), b.structure_batch.unwrap_or(1))?.exact_below(k))
}

/// Runs `run` on every group of `router` (one [`Workspace`] per bucket, reused by its groups),
/// and passes each structure's result to `emit` in input order, as soon as it and every
/// structure before it are done. `run` returns one result per group member, in member order.
pub fn run_in_order<T>(
    router: &Router,
    lengths: &[usize],
    mut run: impl FnMut(&Group, &mut Workspace) -> Result<Vec<T>>,
    mut emit: impl FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    let mut done: Vec<Option<T>> = (0..lengths.len()).map(|_| None).collect();
    let mut next = 0;
    let mut ws = (usize::MAX, Workspace::new());
    for group in router.route(lengths) {
        if ws.0 != group.bucket {
            ws = (group.bucket, Workspace::new());
        }
        let results = run(&group, &mut ws.1)?;
        anyhow::ensure!(results.len() == group.members.len(), "a batch returned {} results", results.len());
        for (&i, r) in group.members.iter().zip(results) {
            done[i] = Some(r);
        }
        while let Some(r) = done.get_mut(next).and_then(Option::take) {
            emit(next, r)?;
            next += 1;
        }
    }
    Ok(())
}
