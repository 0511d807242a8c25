//! Issue 10's accuracy bar for `--precision int8` where it runs W8A8 (AVX-512 VNNI): ≥ 99 %
//! top-1 agreement with float32 on the unconditional probabilities of every parity case (each
//! case's own designed chains and fixed positions). Elsewhere (W8A16) the figures are printed.

mod common;

use mpnn::featurize::Batch;
use mpnn::kernels::int8;
use mpnn::kernels::precision::Precision;

const VOCAB: usize = 21;

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

#[test]
fn int8_keeps_99_percent_top1_agreement_on_every_parity_case() {
    let Some(dir) = common::parity_dir() else { return };
    let mut worst = (1f64, String::new());
    let mut worst_d = (0f32, String::new());
    for name in common::cases(&dir) {
        let case = common::load_case(&dir, &name);
        let model = case.model();
        let q = model.with_precision(Precision::Int8);
        let f = case.features("pdb").unwrap();
        let batch = Batch::new(&[&f], None);
        let a = model.unconditional(&model.encode(&batch));
        let b = q.unconditional(&q.encode(&batch));
        let (mut n, mut same, mut dmax) = (0usize, 0usize, 0f32);
        for (i, &m) in f.design_mask().iter().enumerate() {
            if m > 0.0 {
                n += 1;
                let (ra, rb) = (&a[i * VOCAB..][..VOCAB], &b[i * VOCAB..][..VOCAB]);
                same += (argmax(ra) == argmax(rb)) as usize;
                dmax = ra.iter().zip(rb).fold(dmax, |d, (x, y)| d.max((x - y).abs()));
            }
        }
        let agree = same as f64 / n.max(1) as f64;
        eprintln!(
            "{name:24} {:6.2} % ({} of {n} designed positions flipped), max |d log-prob| {dmax:.4}",
            100.0 * agree,
            n - same
        );
        if agree < worst.0 {
            worst = (agree, name.clone());
        }
        if dmax > worst_d.0 {
            worst_d = (dmax, name);
        }
    }
    eprintln!("worst: {} {:.2} %; largest |d log-prob| {:.4} ({})", worst.1, 100.0 * worst.0, worst_d.0, worst_d.1);
    if int8::algorithm() == int8::Algorithm::W8A8 {
        assert!(worst.0 >= 0.99, "int8 top-1 agreement {:.2} % on {}", 100.0 * worst.0, worst.1);
        // The per-node mean correction of the one-pass layers keeps every log-probability
        // within ~0.015 of float32 (without it the Cα-only model reached 0.049).
        assert!(worst_d.0 <= 0.03, "int8 |d log-prob| {:.4} on {}", worst_d.0, worst_d.1);
    }
}

/// int8 results do not depend on what else is in the batch: a structure's encoder states and
/// unconditional log-probabilities are the same bits alone and padded next to a longer one
/// (the per-node correction of the one-pass layers works per node, never per call).
#[test]
fn int8_outputs_do_not_depend_on_the_batch() {
    let Some(dir) = common::parity_dir() else { return };
    let small = common::load_case(&dir, "monomer_6MRR_bias_omit");
    let big = common::load_case(&dir, "monomer_5L33");
    let q = small.model().with_precision(Precision::Int8);
    let (fs, fb) = (small.features("pdb").unwrap(), big.features("pdb").unwrap());
    let alone = Batch::new(&[&fs], None);
    let both = Batch::new(&[&fb, &fs], None);
    let (l, lb) = (alone.l, both.l);
    assert!(lb > l && l > 48, "the test needs a padded second item with k = 48 ({l}, {lb})");
    let (ea, eb) = (q.encode(&alone), q.encode(&both));
    let h = q.hidden();
    assert_eq!(ea.h_v[..l * h], eb.h_v[lb * h..(lb + l) * h], "encoder states");
    let (pa, pb) = (q.unconditional(&ea), q.unconditional(&eb));
    assert_eq!(pa[..l * VOCAB], pb[lb * VOCAB..(lb + l) * VOCAB], "unconditional log-probabilities");
}
