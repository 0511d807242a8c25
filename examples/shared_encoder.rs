//! What `mpnn score --fasta` gains from scoring every sequence of a structure in one
//! `Engine::score_many` call (one encoder pass) instead of one `Engine::score` call per
//! sequence (one encoder pass each). Development aid; prints medians of 5 runs.
//!
//! `cargo run --release --example shared_encoder -- WEIGHTS.pt STRUCTURE.pdb SEQUENCES`
use std::time::Instant;

use mpnn::featurize::{featurize, ChainSelection, Constraints};
use mpnn::pipeline::{Engine, Pass, Workspace};
use mpnn::rng::{self, Purpose};

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ckpt = mpnn::checkpoint::load(std::path::Path::new(&args[1])).unwrap();
    let engine = Engine::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
    let p = mpnn::structure::read_structure(std::path::Path::new(&args[2])).unwrap();
    let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
    let n: usize = args[3].parse().unwrap();
    let passes: Vec<Pass> = (0..n)
        .map(|i| {
            let seq = f.s.iter().map(|&a| (a + i as u8) % 20).collect();
            (seq, rng::randn(&mut rng::stream(1, &f.name, Purpose::ScoreOrder, 0), f.len()))
        })
        .collect();
    let each = median_ms(|| {
        for pass in &passes {
            std::hint::black_box(engine.score(&f, std::slice::from_ref(pass)));
        }
    });
    let shared = median_ms(|| {
        std::hint::black_box(engine.score_many(&[(&f, &passes[..])], None, &mut Workspace::new()).unwrap());
    });
    println!(
        "{} (L = {}), {n} sequences: encoder per sequence {each:.0} ms, shared {shared:.0} ms ({:.1}×)",
        f.name,
        f.len(),
        each / shared
    );
}
