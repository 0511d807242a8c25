//! `mpnn bench`: scoring and design speed over the parity structures and synthetic backbones.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mpnn::bench::{self, Plan};
use mpnn::checkpoint;
use mpnn::kernels::isa::{self, Isa};
use mpnn::model::ProteinMpnn;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Checkpoints to measure, as LABEL=FILE (repeatable). Default: the parity fixtures
    /// full_k48 and small_h64_l2_k16 from --parity-dir.
    #[arg(long = "weights", value_name = "LABEL=FILE")]
    pub weights: Vec<String>,
    /// The parity fixture folder (structures/ and weights/).
    #[arg(long = "parity-dir", default_value = "../shared/parity")]
    pub parity_dir: PathBuf,
    /// Real structures to include (default: 5L33, 6MRR, 3HTN, 4YOW from the parity folder).
    #[arg(long = "structure", value_name = "FILE")]
    pub structures: Vec<PathBuf>,
    /// Synthetic backbone lengths (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "50,200,1000,5000")]
    pub lengths: Vec<usize>,
    /// No synthetic backbones.
    #[arg(long)]
    pub no_synthetic: bool,
    /// Inference-time k values (0 = the checkpoint's own).
    #[arg(long = "k", value_delimiter = ',', default_value = "0")]
    pub ks: Vec<usize>,
    /// Sequences per structure (comma-separated).
    #[arg(long = "batch", value_delimiter = ',', default_value = "1,8")]
    pub batches: Vec<usize>,
    /// Also score the whole structure set through the bucketed, padded batch path (the
    /// "score-set" rows), this many structures per batch (comma-separated, e.g. "1,4,8"; 1 is
    /// the one-at-a-time baseline through the same path).
    #[arg(long = "structure-batch", value_delimiter = ',', value_name = "N,...")]
    pub structure_batches: Vec<usize>,
    /// Length buckets for the "score-set" rows (as `mpnn score --buckets`).
    #[arg(long, value_name = "SPEC", default_value = "64,128,256,512,1024")]
    pub buckets: mpnn::bucket::Buckets,
    /// Sampling temperature for design.
    #[arg(long, default_value_t = 0.1)]
    pub temperature: f32,
    /// Timed repeats per row (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Measure the plain reference path for structures up to this length (0 = off).
    #[arg(long = "reference-max-len", default_value_t = 120)]
    pub reference_max_len: usize,
    /// Only the scoring pass.
    #[arg(long, conflicts_with = "design_only")]
    pub score_only: bool,
    /// Only design.
    #[arg(long)]
    pub design_only: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Instruction-set paths of the kernels to compare in this run, interleaving the repeats
    /// (comma-separated: avx512, avx2, portable, or `all` for every path this CPU has).
    /// Default: the process's path (the best one, or MPNN_ISA's).
    #[arg(long = "isa", value_delimiter = ',', value_name = "PATH,...")]
    pub isas: Vec<String>,
    /// Number formats of the dense layers to compare in this run, interleaved with the paths
    /// (comma-separated: f32, bf16, f16, int8, and bf16-emulated: bf16 with `vdpbf16ps`
    /// emulated even where the CPU has it). Default: f32. With --device gpu: f32 and f16
    /// (f16 on GPUs with f16 shaders, SHADER_F16); the f16 score rows give the top-1 agreement
    /// and max |Δ log-prob| against the GPU's float32 model.
    #[arg(long = "precision", value_delimiter = ',', value_name = "FORMAT,...")]
    pub precisions: Vec<String>,
    /// Measure this machine's arithmetic limit per unit instead (AVX2 FMA, AVX-512 FMA, AVX-512
    /// VNNI, AVX-512 BF16; 1 thread and --threads/all cores), then stop.
    #[arg(long)]
    pub peak: bool,
    /// Where to run: cpu (default: the CPU table above), or gpu (`mpnn bench --device gpu`:
    /// design and scoring on the GPU per structure / length bucket and batch size — sequences/s,
    /// residues/s, the GPU batch, GPU memory — with the CPU's time for the same work beside).
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu")]
    pub device: mpnn::device::DeviceChoice,
    /// With --device gpu: skip the CPU measurement beside each row.
    #[arg(long)]
    pub no_cpu: bool,
}

/// The `--isa` list: every path named, checked against this CPU.
fn isa_list(names: &[String]) -> Result<Vec<Isa>> {
    let mut out = Vec::new();
    for n in names {
        let list = if n.trim() == "all" {
            Isa::available()
        } else {
            let i: Isa =
                n.parse().map_err(|_| anyhow::anyhow!("--isa {n}: not a path; use avx512, avx2, portable or all"))?;
            vec![isa::check(i).map_err(|e| {
                anyhow::anyhow!(
                    "--isa {n}: {}",
                    e.to_string().split_once(": ").map_or(e.to_string(), |x| x.1.to_string())
                )
            })?]
        };
        for i in list {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    Ok(out)
}

fn peak(a: &BenchArgs) -> Result<()> {
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!("mpnn bench --peak: 12 independent chains per unit in registers, 1 and {threads} threads");
    let rows = mpnn::peak::measure(threads, |line| eprintln!("{line}"));
    let md = mpnn::peak::markdown(&rows);
    println!("{md}");
    if let Some(p) = &a.markdown {
        mpnn::structure::write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = &a.json {
        let doc = serde_json::json!({ "cpu": cpu_model(), "rows": rows });
        mpnn::structure::write_atomic(p, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    Ok(())
}

/// The CPU's model name (`/proc/cpuinfo`), for the report.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn load(label: &str, path: &std::path::Path) -> Result<(String, ProteinMpnn)> {
    let ckpt = checkpoint::load(path)?;
    let arch = ckpt.architecture()?;
    Ok((label.to_string(), ProteinMpnn::new(&ckpt, arch)?))
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.peak {
        return peak(a);
    }
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
    let isas = isa_list(&a.isas)?;
    let mut precisions: Vec<bench::BenchPrecision> = Vec::new();
    for p in &a.precisions {
        let v: bench::BenchPrecision = p.parse().map_err(|e| anyhow::anyhow!("--precision {e}"))?;
        if !precisions.contains(&v) {
            precisions.push(v);
        }
    }
    if a.structure_batches.contains(&0) {
        bail!("--structure-batch: a batch of 0 structures runs nothing; give sizes of at least 1");
    }
    let mut models = Vec::new();
    if a.weights.is_empty() {
        for (label, file) in [("full_k48", "full_k48.pt"), ("small_h64_l2_k16", "small_h64_l2_k16.pt")] {
            let path = a.parity_dir.join("weights").join(file);
            models.push(load(label, &path).with_context(|| {
                format!("{}: default benchmark weights not found; pass --weights LABEL=FILE", path.display())
            })?);
        }
    } else {
        for w in &a.weights {
            let Some((label, file)) = w.split_once('=') else { bail!("--weights takes LABEL=FILE, got `{w}`") };
            models.push(load(label, std::path::Path::new(file))?);
        }
    }
    let mut structures = Vec::new();
    let real: Vec<PathBuf> = if a.structures.is_empty() {
        ["5L33.pdb", "6MRR.pdb", "3HTN.pdb", "4YOW.pdb"]
            .iter()
            .map(|f| a.parity_dir.join("structures").join(f))
            .filter(|p| p.exists())
            .collect()
    } else {
        a.structures.clone()
    };
    for p in real {
        structures.push(mpnn::structure::read_structure(&p)?);
    }
    for &l in a.lengths.iter().filter(|_| !a.no_synthetic) {
        structures.push(bench::synthetic_backbone(&format!("synthetic_{l}"), l, 500));
    }
    if a.device != mpnn::device::DeviceChoice::Cpu {
        if precisions.iter().any(|v| v.bf16_emulated) {
            bail!(
                "mpnn bench --device {}: --precision bf16-emulated is a CPU kernel variant; the GPU runs f32 and f16",
                a.device
            );
        }
        let gpu_precisions: Vec<_> = precisions.iter().map(|v| v.precision).collect();
        return gpu_bench(a, &models, &gpu_precisions, &structures);
    }
    let plan = Plan {
        models,
        structures,
        ks: a.ks.clone(),
        batches: a.batches.clone(),
        temperature: a.temperature,
        repeats: a.repeats,
        reference_max_len: a.reference_max_len,
        design: !a.score_only,
        score: !a.design_only,
        structure_batches: a.structure_batches.clone(),
        buckets: a.buckets.clone(),
        isas: isas.clone(),
        precisions: precisions.clone(),
    };
    let paths = if isas.is_empty() { vec![isa::active()] } else { isas };
    // "; int8 kernel on avx512: ..., avx2: ..." where `precision` is benchmarked, else nothing.
    let kernels_of = |precision, name: fn(Isa) -> &'static str| {
        if precisions.iter().any(|v| v.precision == precision) {
            let names: Vec<String> = paths.iter().map(|&p| format!("{p}: {}", name(p))).collect();
            format!("; {precision} kernel on {}", names.join(", "))
        } else {
            String::new()
        }
    };
    eprintln!(
        "mpnn bench: {} threads, CPU {}, kernel path{} {} (available: {}){}{}",
        rayon::current_num_threads(),
        cpu_model(),
        if paths.len() > 1 { "s" } else { "" },
        paths.iter().map(|i| i.name()).collect::<Vec<_>>().join(", "),
        Isa::available().iter().map(|i| i.name()).collect::<Vec<_>>().join(", "),
        kernels_of(mpnn::kernels::precision::Precision::Int8, mpnn::kernels::int8::kernel_name),
        kernels_of(mpnn::kernels::precision::Precision::Bf16, mpnn::kernels::bf16::kernel_name)
    );
    let rows = bench::run(&plan, |r| {
        eprintln!(
            "{:>6} {:<14} L={:<5} {:<16} k={:<2} batch={:<2}{} {:<8} {:<13} {:>9.1} ms/protein {:>9.0} res/s {:>6.1} GFLOP/s  peak {:.0} MiB{}",
            r.task,
            r.structure,
            r.length,
            r.checkpoint,
            r.k,
            r.batch,
            if r.task == "score-set" { format!(" structures/batch={}", r.structure_batch) } else { String::new() },
            r.isa,
            r.precision,
            r.ms_per_protein,
            r.residues_per_s,
            r.gflops,
            r.peak_rss_mib,
            r.speedup_over_reference.map(|s| format!("  ({s:.1}× the reference path)")).unwrap_or_default()
        )
    });
    let md = bench::markdown(&rows);
    println!("{md}");
    if let Some(p) = &a.markdown {
        mpnn::structure::write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "threads": rayon::current_num_threads(),
            "cpu": cpu_model(),
            "isa_available": Isa::available().iter().map(|i| i.name()).collect::<Vec<_>>(),
            "mpnn_version": env!("CARGO_PKG_VERSION"),
            "rows": rows,
        });
        mpnn::structure::write_atomic(p, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    Ok(())
}

/// `mpnn bench --device gpu|auto`.
fn gpu_bench(
    a: &BenchArgs,
    models: &[(String, ProteinMpnn)],
    precisions: &[mpnn::kernels::precision::Precision],
    structures: &[mpnn::structure::Protein],
) -> Result<()> {
    let device = mpnn::device::Device::open(a.device)?;
    #[cfg(feature = "gpu")]
    if let mpnn::device::Device::Gpu(gpu) = &device {
        eprintln!(
            "mpnn bench --device {}: {} (CPU beside it: {}, {} threads)",
            a.device,
            gpu.adapter,
            cpu_model(),
            rayon::current_num_threads()
        );
        let (batches, with_cpu) = (&a.batches, !a.no_cpu);
        let tasks: Vec<&'static str> = ["design", "score"]
            .into_iter()
            .filter(|&t| if t == "design" { !a.score_only } else { !a.design_only })
            .collect();
        let rows = bench::run_gpu(
            gpu,
            models,
            precisions,
            &tasks,
            structures,
            batches,
            a.temperature,
            a.repeats,
            with_cpu,
            |r| {
                eprintln!(
                "{:>6} {:<14} L={:<5} {:<16} {:<4} batch={:<4} gpu batch={:<4} {:>9.1} ms {:>9.1} seq/s {:>10.0} res/s {:>6.0} MiB  CPU {}{}",
                r.task,
                r.structure,
                r.length,
                r.checkpoint,
                r.precision,
                r.batch,
                r.gpu_batch,
                r.gpu_ms,
                r.gpu_seq_per_s,
                r.gpu_residues_per_s,
                r.gpu_mib,
                r.cpu_ms.map_or("-".into(), |c| format!("{c:.1} ms ({:.2}× the GPU time)", c / r.gpu_ms)),
                match (r.top1_vs_f32, r.max_dlp_vs_f32) {
                    (Some(a), Some(d)) => format!("  top-1 vs f32 {:.2} %, max |Δ log-prob| {d:.2e}", 100.0 * a),
                    _ => String::new(),
                },
            )
            },
        )?;
        let md = bench::gpu_markdown(&rows);
        println!("{md}");
        if let Some(p) = &a.markdown {
            mpnn::structure::write_atomic(p, md.as_bytes())?;
        }
        if let Some(p) = &a.json {
            let doc = serde_json::json!({
                "device": gpu.adapter.to_string(),
                "cpu": cpu_model(),
                "threads": rayon::current_num_threads(),
                "mpnn_version": env!("CARGO_PKG_VERSION"),
                "rows": rows,
            });
            mpnn::structure::write_atomic(p, serde_json::to_string_pretty(&doc)?.as_bytes())?;
        }
        return Ok(());
    }
    let _ = (models, precisions, structures);
    bail!("mpnn bench --device {}: no usable GPU ({device}); run it with --device gpu on a machine with one", a.device)
}
