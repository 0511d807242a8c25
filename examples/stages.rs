//! Per-stage timing of one structure (development aid; `mpnn bench` is the benchmark).
use std::time::Instant;

use mpnn::checkpoint;
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints};
use mpnn::model::decoder::decoding_order;
use mpnn::model::ProteinMpnn;
use mpnn::sampler::{Multinomial, Sampler, SamplingOptions};
use rand::SeedableRng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ckpt = checkpoint::load(std::path::Path::new(&args[1])).unwrap();
    let model = ProteinMpnn::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
    // `MPNN_PRECISION=int8` (etc.) times that precision instead of f32.
    let precision = std::env::var("MPNN_PRECISION").map_or(Default::default(), |p| p.parse().unwrap());
    let model = model.with_precision(precision);
    let p = mpnn::structure::read_structure(std::path::Path::new(&args[2])).unwrap();
    let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
    let batch = Batch::new(&[&f], None);
    let reps: usize = std::env::var("MPNN_REPS").map_or(10, |r| r.parse().unwrap());
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(model.edge_features(&batch));
    }
    let feat = t.elapsed().as_secs_f64() / reps as f64;
    let (g, e) = model.edge_features(&batch);
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(model.encode_edges(&batch, g.clone(), &e));
    }
    let enc_t = t.elapsed().as_secs_f64() / reps as f64;
    let enc = model.encode(&batch);
    let randn = mpnn::rng::randn(&mut mpnn::rng::stream(1, "x", mpnn::rng::Purpose::ScoreOrder, 0), f.len());
    let order = decoding_order(&f.design_mask(), &randn);
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(model.forward(&enc, &f.s, &order));
    }
    let dec = t.elapsed().as_secs_f64() / reps as f64;
    let lom = mpnn::sampler::pssm_log_odds_mask(&f, 0.0);
    let t = Instant::now();
    let sampler = Sampler::new(&model, &enc, &f, lom, SamplingOptions::new(0.1));
    let setup = t.elapsed().as_secs_f64();
    let randns: Vec<Vec<f32>> = (0..8)
        .map(|i| mpnn::rng::randn(&mut mpnn::rng::stream(1, "x", mpnn::rng::Purpose::DesignOrder, i), f.len()))
        .collect();
    let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
    let t = Instant::now();
    let mut rngs: Vec<Multinomial<rand_chacha::ChaCha8Rng>> =
        (0..8).map(|i| Multinomial(rand_chacha::ChaCha8Rng::seed_from_u64(i))).collect();
    let mut ch: Vec<&mut dyn mpnn::sampler::Chooser> =
        rngs.iter_mut().map(|r| r as &mut dyn mpnn::sampler::Chooser).collect();
    let samples = sampler.sample_many(&refs, &mut ch);
    let samp = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for s in &samples {
        std::hint::black_box(sampler.scores(s));
    }
    let rescore = t.elapsed().as_secs_f64();
    let l = f.len() as f64;
    println!(
        "L={l} features {:.1} ms, encoder {:.1} ms, decoder forward {:.1} ms => scoring pass {:.1} ms ({:.0} res/s)",
        feat * 1e3,
        enc_t * 1e3,
        dec * 1e3,
        (feat + enc_t + dec) * 1e3,
        l / (feat + enc_t + dec)
    );
    println!(
        "design 8 seqs: setup {:.1} ms, sampling {:.1} ms ({:.1} ms/seq), rescoring {:.1} ms => {:.0} designed res/s",
        setup * 1e3,
        samp * 1e3,
        samp * 1e3 / 8.0,
        rescore * 1e3,
        8.0 * l / (feat + enc_t + setup + samp + rescore)
    );
}
