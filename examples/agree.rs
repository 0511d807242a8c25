//! int8 top-1 agreement with f32 on the unconditional probabilities of the 11 parity
//! configurations (development aid: `mpnn eval` is the measurement; this prints the flipped
//! positions with their f32 and int8 margins). `cargo run --release --example agree`.
use mpnn::checkpoint;
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints};
use mpnn::kernels::precision::Precision;
use mpnn::model::ProteinMpnn;

const VOCAB: usize = 21;

fn top2(row: &[f32]) -> (usize, f32) {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    (idx[0], row[idx[0]] - row[idx[1]])
}

fn main() {
    let dir = std::env::var("PARITY").unwrap_or("/work/shared/parity".into());
    let cases: [(&str, &str, &str, bool); 11] = [
        ("monomer_5L33", "full_k48", "5L33", false),
        ("monomer_6MRR", "full_k48", "6MRR", false),
        ("complex_3HTN", "full_k48", "3HTN", false),
        ("complex_4YOW", "full_k48", "4YOW", false),
        ("homooligomer_4GYT", "full_k48", "4GYT", false),
        ("6EHB", "full_k48", "6EHB", false),
        ("quirks", "full_k48", "quirks", false),
        ("ca_5L33", "ca_k48", "5L33", true),
        ("ca_3HTN", "ca_k48", "3HTN", true),
        ("small_5L33", "small_h64_l2_k16", "5L33", false),
        ("small_6EHB", "small_h64_l2_k16", "6EHB", false),
    ];
    let verbose = std::env::var("VERBOSE").is_ok();
    let mut worst = 1f64;
    for (name, w, s, ca) in cases {
        let ckpt = checkpoint::load(std::path::Path::new(&format!("{dir}/weights/{w}.pt"))).unwrap();
        let model = ProteinMpnn::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
        let q = model.with_precision(Precision::Int8);
        let p = mpnn::structure::read_structure(std::path::Path::new(&format!("{dir}/structures/{s}.pdb"))).unwrap();
        let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), ca).unwrap();
        let batch = Batch::new(&[&f], None);
        let a = model.unconditional(&model.encode(&batch));
        let b = q.unconditional(&q.encode(&batch));
        let design = f.design_mask();
        let (mut n, mut same, mut maxd) = (0usize, 0usize, 0f32);
        let (mut s1, mut s2) = (0f64, 0f64);
        for (i, &m) in design.iter().enumerate() {
            if m <= 0.0 {
                continue;
            }
            n += 1;
            let (ra, rb) = (&a[i * VOCAB..][..VOCAB], &b[i * VOCAB..][..VOCAB]);
            for (x, y) in ra.iter().zip(rb) {
                maxd = maxd.max((x - y).abs());
            }
            let ((ta, ma), (tb, mb)) = (top2(ra), top2(rb));
            let (c0, c1) = if name.starts_with("small") { (16, 8) } else { (0, 5) };
            let d = ((rb[c0] - rb[c1]) - (ra[c0] - ra[c1])) as f64;
            s1 += d;
            s2 += d * d;
            if ta == tb {
                same += 1;
            } else if verbose {
                println!("  {name} pos {i}: f32 top {ta} margin {ma:.4}, int8 top {tb} margin {mb:.4}");
            }
        }
        let ag = same as f64 / n as f64;
        worst = worst.min(ag);
        let (mean, sd) = (s1 / n as f64, (s2 / n as f64 - (s1 / n as f64).powi(2)).sqrt());
        println!(
            "{name:20} {:6.2}% ({} of {n} flipped) max|dlogp| {maxd:.3} d(l0-l5) mean {mean:.4} sd {sd:.4}",
            100.0 * ag,
            n - same
        );
    }
    println!("worst {:.2}%", 100.0 * worst);
}
