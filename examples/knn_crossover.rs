//! Where the cell-list k-NN starts beating the plain scan (k = 48, synthetic backbones).
//! `cargo run --release --example knn_crossover`
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints};
use mpnn::model::graph::Graph;
use std::time::Instant;

fn main() {
    for len in [150, 200, 300, 400, 500, 700, 1000, 1500] {
        let p = mpnn::bench::synthetic_backbone(&format!("synthetic_{len}"), len, 500);
        let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
        let batch = Batch::new(&[&f], None);
        let (b, l) = (batch.b, batch.l);
        let ca: Vec<f32> = (0..b * l).flat_map(|r| batch.x[r * 12 + 3..r * 12 + 6].to_vec()).collect();
        let time = |cells: bool| {
            let mut best = f64::MAX;
            for _ in 0..15 {
                let t = Instant::now();
                std::hint::black_box(Graph::build_with(&ca, &batch.mask, l, &batch.lengths, 48, cells));
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e3
        };
        let (c, s) = (time(true), time(false));
        println!("L = {len:5}: cell list {c:7.3} ms, scan {s:7.3} ms, cell/scan {:.2}", c / s);
    }
}
