//! Running a design on a cluster: `mpnn slurm` (the sbatch script of a job array), `mpnn status`
//! (how far a run has come, and which shards to rerun) and `mpnn merge-tables` (one run table
//! out of the shards' tables).
//!
//! `status` needs no inputs: every `mpnn design` task records, when it starts, every structure
//! of the run (all shards: each task checks every structure), its shard and the hash of the
//! parameters its record must hold in `OUT/.mpnn-run.json` ([`resume::RunFile`]). So the shard
//! split, and what "complete" means, are those of the tasks that ran, not a second reading of
//! the inputs that could disagree with them (files changed since, another working folder).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, ValueEnum};
use mpnn::cluster::{self, shell_quote, Sbatch};
use mpnn::output;
use mpnn::structure;

use super::args::{Cli, Command};
use super::common::structure_paths;
use super::resume;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Gpu,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  mpnn slurm --tasks 100 --parallel 20 --cpus-per-task 4 --time 4:00:00 -- \\\n    \
    design --list backbones.txt --out designs/ --num_seq_per_target 8 --seed 37\n  \
    sbatch designs/slurm/mpnn.sbatch\n  mpnn status designs/")]
pub struct SlurmArgs {
    /// Array tasks (shards): task I of --array=1-N designs --shard I/N.
    #[arg(long, value_name = "N")]
    pub tasks: usize,
    /// Run at most M tasks at once (--array=1-N%M).
    #[arg(long, value_name = "M")]
    pub parallel: Option<usize>,
    /// CPUs per task (--cpus-per-task); mpnn runs that many threads.
    #[arg(long = "cpus-per-task", value_name = "C", default_value_t = 1)]
    pub cpus_per_task: usize,
    /// cpu, or gpu: one GPU per task (--gres=gpu:1), the design command run with --device gpu
    /// (a node without a usable GPU stops with a clear error).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Time limit of each task, as sbatch takes it (e.g. 30, 4:00:00, 1-00:00:00).
    #[arg(long, value_name = "TIME")]
    pub time: String,
    /// Partition (--partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Memory per node (--mem), e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Any other sbatch option, verbatim, e.g. --sbatch-option=--account=lab (repeatable).
    #[arg(long = "sbatch-option", value_name = "OPTION")]
    pub sbatch_option: Vec<String>,
    /// Job name (--job-name).
    #[arg(long = "job-name", default_value = "mpnn")]
    pub job_name: String,
    /// Where to write the script (default: OUT/slurm/mpnn.sbatch).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// The mpnn program the tasks run (default: this one, by its absolute path).
    #[arg(long, value_name = "PATH")]
    pub mpnn: Option<String>,
    /// The design command, after `--`: `design STRUCTURES... --out OUT [flags]`, exactly as for
    /// one process, without --shard (each task adds its own). A --table FILE sets the tables'
    /// format: each task writes OUT/slurm/tables/shard-I.csv (or .jsonl); merge them with
    /// `mpnn merge-tables`.
    #[arg(last = true, required = true, value_name = "DESIGN COMMAND")]
    pub command: Vec<String>,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

/// `mpnn slurm`: checks the design command and writes the sbatch script.
pub fn slurm(a: &SlurmArgs) -> Result<()> {
    if a.tasks == 0 {
        bail!("--tasks 0: a job array has at least 1 task");
    }
    if a.parallel == Some(0) {
        bail!("--parallel 0 would run nothing; give at least 1 (or leave it out: no limit)");
    }
    if a.cpus_per_task == 0 {
        bail!("--cpus-per-task 0: a task needs at least 1 CPU");
    }
    let t = a.time.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'-') {
        bail!("--time {}: give a time limit as sbatch takes it: MINUTES, H:MM:SS or D-HH:MM:SS", a.time);
    }
    if a.command.first().map(String::as_str) != Some("design") {
        bail!(
            "give the design command after `--`, starting with `design`, e.g. \
             mpnn slurm --tasks 4 --time 1:00:00 -- design --list inputs.txt --out OUT --seed 37"
        );
    }
    let cli = Cli::try_parse_from(std::iter::once("mpnn".to_string()).chain(a.command.iter().cloned()))
        .map_err(|e| anyhow::anyhow!("the design command after `--`: {}", e.to_string().trim_end()))?;
    let Some(Command::Design(d)) = cli.command else { unreachable!("the first word is `design`") };
    if let Some(s) = &d.design.shard {
        bail!(
            "the design command after `--` has --shard {s}; leave it out: task I of the array runs --shard I/{}",
            a.tasks
        );
    }
    let Some(out) = &d.common.out else {
        bail!("the design command after `--` has no --out DIR: the tasks must share an output folder")
    };
    let ext = match &d.design.table {
        None => "csv",
        Some(t) => match t.extension().and_then(|e| e.to_str()) {
            Some("csv") => "csv",
            Some("jsonl") => "jsonl",
            _ => bail!("--table {}: the table file must end in .csv or .jsonl", t.display()),
        },
    };
    // The words of the command, less --table (each task writes its own).
    let mut words = Vec::new();
    let mut it = a.command.iter();
    while let Some(w) = it.next() {
        if w == "--table" {
            it.next();
        } else if !w.starts_with("--table=") {
            words.push(w.clone());
        }
    }
    let files = structure_paths(&d.common).context("the design command after `--`")?;
    if d.common.seed == 0 {
        eprintln!(
            "warning: the design command has no --seed: each task would pick its own random seed, so the designs \
             could not be reproduced (and differ from one process's); pass --seed N"
        );
    }
    if files.len() < a.tasks {
        eprintln!(
            "warning: {} structure file{} for {} tasks: {} task{} will have nothing to design",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            a.tasks,
            a.tasks - files.len(),
            if a.tasks - files.len() == 1 { "" } else { "s" }
        );
    }

    let cwd = std::env::current_dir().context("the current folder")?;
    let out_abs = absolute(out)?;
    let slurm_dir = out_abs.join("slurm");
    for sub in ["logs", "tables"] {
        let dir = slurm_dir.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let script = match &a.script {
        Some(s) => absolute(s)?,
        None => slurm_dir.join("mpnn.sbatch"),
    };
    let program = match &a.mpnn {
        Some(p) => p.clone(),
        None => {
            let exe = std::env::current_exe().context("the path of this mpnn")?;
            exe.canonicalize().unwrap_or(exe).display().to_string()
        }
    };
    // GPU tasks run the design on the GPU (`--device gpu`: a node whose GPU mpnn cannot use stops
    // with a clear error instead of designing on the CPUs while holding the GPU).
    let device_given = words.iter().any(|w| w == "--device" || w.starts_with("--device="));
    if a.device == DeviceArg::Gpu {
        match d.common.device {
            mpnn::device::DeviceChoice::Cpu => bail!(
                "mpnn slurm --device gpu, but the design command after `--` has --device cpu: \
                 drop one of them (GPU tasks run the design with --device gpu)"
            ),
            _ if !device_given => words.extend(["--device".to_string(), "gpu".to_string()]),
            _ => {}
        }
    }
    let mut command = vec![program];
    command.extend(words);
    let tables = slurm_dir.join("tables");
    // Where the merged table goes: the design command's --table, else OUT/run.csv.
    let merged = match &d.design.table {
        Some(t) => absolute(t)?,
        None => out_abs.join(format!("run.{ext}")),
    };
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let notes = vec![
        format!("mpnn design as a Slurm job array, written by `mpnn slurm` (mpnn {}).", env!("CARGO_PKG_VERSION")),
        format!(
            "Task I of --array=1-{n} designs shard I/{n} of the structures (structure k of the name-sorted list goes to shard (k mod {n}) + 1).",
            n = a.tasks
        ),
        String::new(),
        format!("Submit:           sbatch {}", q(&script)),
        format!("Progress:         mpnn status {}", q(&out_abs)),
        format!("Rerun tasks 2, 4: sbatch --array=2,4 {}   (resume skips finished structures)", q(&script)),
        format!(
            "One table:        mpnn merge-tables {}/shard-*.{ext} --out {}",
            q(&tables),
            q(&merged)
        ),
        String::new(),
    ];
    let sb = Sbatch {
        job_name: a.job_name.clone(),
        tasks: a.tasks,
        parallel: a.parallel,
        cpus_per_task: a.cpus_per_task,
        device: match a.device {
            DeviceArg::Cpu => cluster::Device::Cpu,
            DeviceArg::Gpu => cluster::Device::Gpu,
        },
        time: t.to_string(),
        partition: a.partition.clone(),
        mem: a.mem.clone(),
        extra: a.sbatch_option.clone(),
        chdir: cwd.display().to_string(),
        log: slurm_dir.join("logs").join("%x-%A_%a.out").display().to_string(),
        command,
        table: tables.join(format!("shard-{{task}}.{ext}")).display().to_string(),
        notes,
    };
    structure::write_atomic(&script, sb.script().as_bytes())
        .with_context(|| format!("{}: cannot write the script", script.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).ok();
    }
    println!(
        "wrote {} ({} task{} over {} structure file{})",
        script.display(),
        a.tasks,
        if a.tasks == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    println!("submit:   sbatch {}", q(&script));
    println!("progress: mpnn status {}", q(&out_abs));
    Ok(())
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The design's output folder (--out).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The sbatch script to name in the rerun command (default: OUT/slurm/mpnn.sbatch, when it
    /// exists).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// List every missing structure (default: up to 10 per shard).
    #[arg(long)]
    pub all: bool,
}

/// Why a structure of the run is not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    NotStarted,
    CutShort,
    OtherParameters,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::NotStarted => "no seqs file",
            Missing::CutShort => "seqs file cut short",
            Missing::OtherParameters => "designed with other parameters",
        })
    }
}

/// Temporary files of interrupted writes (`.FILE.tmp-PID`) under the output folder's subfolders.
fn temporaries(base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["seqs", "scores", "probs", "structures", resume::DIR] {
        let Ok(entries) = std::fs::read_dir(base.join(sub)) else { continue };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let tmp = n.starts_with('.')
                && n.rsplit_once(".tmp-")
                    .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if tmp {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `mpnn status OUT`: prints how far the run has come; `true` when every structure is complete.
pub fn status(a: &StatusArgs) -> Result<bool> {
    let base = &a.out;
    let run = resume::read_run_file(base)?;
    let mut missing: BTreeMap<usize, Vec<(String, Missing)>> = BTreeMap::new();
    let mut complete = 0usize;
    for e in &run.structures {
        let fasta = base.join("seqs").join(format!("{}.fa", e.name));
        let state = match std::fs::read_to_string(&fasta) {
            Err(_) => Some(Missing::NotStarted),
            Ok(text) => match output::parse_design_fasta(&text) {
                Some((_, _, rows)) if rows.len() == run.records => {
                    match resume::read_record(base, &e.name).map(|p| resume::params_hash(&p)) {
                        Some(h) if h == e.params => None,
                        _ => Some(Missing::OtherParameters),
                    }
                }
                _ => Some(Missing::CutShort),
            },
        };
        match state {
            None => complete += 1,
            Some(m) => missing.entry(e.shard).or_default().push((e.name.clone(), m)),
        }
    }
    let total = run.structures.len();
    let shards = |n: usize| format!("{n} shard{}", if n == 1 { "" } else { "s" });
    let done = missing.is_empty();
    if done {
        println!("{}: all {total} structures complete ({})", base.display(), shards(run.shards));
    } else {
        let n_missing = total - complete;
        println!(
            "{}: {complete} of {total} structures complete ({}); {n_missing} missing, in {}:",
            base.display(),
            shards(run.shards),
            shards(missing.len())
        );
        for (shard, names) in &missing {
            let shown = if a.all { names.len() } else { names.len().min(10) };
            let list: Vec<String> = names[..shown].iter().map(|(n, m)| format!("{n} ({m})")).collect();
            println!(
                "  shard {shard}/{}: {} missing: {}{}",
                run.shards,
                names.len(),
                list.join(", "),
                if shown < names.len() {
                    format!(", … and {} more (--all lists them)", names.len() - shown)
                } else {
                    String::new()
                }
            );
        }
        let ids: Vec<String> = missing.keys().map(|s| s.to_string()).collect();
        let script = match &a.script {
            Some(s) => Some(s.clone()),
            None => Some(absolute(base)?.join("slurm").join("mpnn.sbatch")).filter(|p| p.is_file()),
        };
        println!(
            "Rerun {} (finished structures are skipped; a task still running counts as missing here):",
            if ids.len() == 1 { "that shard" } else { "those shards" }
        );
        match script {
            Some(s) => println!("  sbatch --array={} {}", ids.join(","), shell_quote(&s.display().to_string())),
            None => println!(
                "  the same mpnn design command with {}",
                missing.keys().map(|s| format!("--shard {s}/{}", run.shards)).collect::<Vec<_>>().join(", then ")
            ),
        }
    }
    let skipped = base.join("skipped.tsv");
    if let Ok(text) = std::fs::read_to_string(&skipped) {
        let n = text.lines().count().saturating_sub(1);
        println!("{n} input{} skipped as invalid: see {}", if n == 1 { " was" } else { "s were" }, skipped.display());
    }
    let names: std::collections::HashSet<&str> = run.structures.iter().map(|e| e.name.as_str()).collect();
    let mut others: Vec<String> = std::fs::read_dir(base.join("seqs"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".fa").filter(|s| !s.starts_with('.') && !names.contains(s)).map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() {
        others.sort();
        println!(
            "{} design file{} in {} not part of this run (from an earlier run with other inputs): {}{}",
            others.len(),
            if others.len() == 1 { " is" } else { "s are" },
            base.join("seqs").display(),
            others.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if others.len() > 5 { ", …" } else { "" }
        );
    }
    let tmp = temporaries(base);
    if !tmp.is_empty() {
        println!(
            "{} temporary file{} of interrupted writes (removed when {} structure is redone): {}",
            tmp.len(),
            if tmp.len() == 1 { "" } else { "s" },
            if tmp.len() == 1 { "its" } else { "their" },
            tmp.iter().take(5).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if done {
        let tables = absolute(base)?.join("slurm").join("tables");
        for ext in ["csv", "jsonl"] {
            let any = std::fs::read_dir(&tables)
                .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().ends_with(&format!(".{ext}"))));
            if any.unwrap_or(false) {
                println!(
                    "One table: mpnn merge-tables {}/shard-*.{ext} --out {}",
                    shell_quote(&tables.display().to_string()),
                    shell_quote(&absolute(base)?.join(format!("run.{ext}")).display().to_string())
                );
            }
        }
    }
    Ok(done)
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Run tables of the shards (--table), all .csv or all .jsonl.
    #[arg(required = true, value_name = "TABLE")]
    pub tables: Vec<PathBuf>,
    /// The merged table (.csv or .jsonl, like the inputs).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

/// The records of a CSV text (a quoted field may hold newlines), each with its first field
/// (unquoted) and its raw text, line end included.
fn csv_records(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                let raw = &text[start..=i];
                out.push((first_csv_field(raw)?, raw.to_string()));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        bail!("the last line has no line end (the file is cut short)");
    }
    Ok(out)
}

fn first_csv_field(record: &str) -> Result<String> {
    if let Some(rest) = record.strip_prefix('"') {
        let mut field = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    return Ok(field);
                }
            } else {
                field.push(c);
            }
        }
        bail!("an unterminated quoted field");
    }
    Ok(record.split([',', '\n']).next().unwrap_or("").to_string())
}

/// `mpnn merge-tables`: one table with every structure of the inputs, in name order (each
/// structure's rows as its shard wrote them). A structure in two tables must have the same rows
/// in both (kept once); different rows stop the merge.
pub fn merge_tables(a: &MergeArgs) -> Result<()> {
    let kind =
        |p: &Path| p.extension().and_then(|e| e.to_str()).filter(|e| *e == "csv" || *e == "jsonl").map(str::to_string);
    let out_kind = kind(&a.out)
        .with_context(|| format!("--out {}: the merged table must end in .csv or .jsonl", a.out.display()))?;
    let header = output::table_text(&[], false);
    // structure → (table it came from, its rows' text)
    let mut rows: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    let mut duplicates = 0usize;
    for t in &a.tables {
        if kind(t).as_deref() != Some(out_kind.as_str()) {
            bail!("{}: every table must be .{out_kind}, like --out {}", t.display(), a.out.display());
        }
        let text = std::fs::read_to_string(t).with_context(|| format!("{}: cannot read", t.display()))?;
        let records: Vec<(String, String)> = if out_kind == "csv" {
            let body = text.strip_prefix(header.as_str()).with_context(|| {
                format!(
                    "{}: not a run table of mpnn design (the first line is not `{}`)",
                    t.display(),
                    header.trim_end()
                )
            })?;
            csv_records(body).with_context(|| format!("{}: not a complete CSV table", t.display()))?
        } else {
            let mut v = Vec::new();
            for (i, line) in text.split_inclusive('\n').enumerate() {
                let value: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{}: line {} is not JSON", t.display(), i + 1))?;
                let name = value
                    .get("structure")
                    .and_then(|s| s.as_str())
                    .with_context(|| format!("{}: line {} has no \"structure\"", t.display(), i + 1))?;
                if !line.ends_with('\n') {
                    bail!("{}: the last line has no line end (the file is cut short)", t.display());
                }
                v.push((name.to_string(), line.to_string()));
            }
            v
        };
        let mut mine: BTreeMap<String, String> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (name, raw) in records {
            if !mine.contains_key(&name) {
                order.push(name.clone());
            } else if order.last() != Some(&name) {
                bail!("{}: the rows of {name} are not together; is this a table of mpnn design?", t.display());
            }
            mine.entry(name).or_default().push_str(&raw);
        }
        for (name, text) in mine {
            match rows.get(&name) {
                Some((other, old)) if *old != text => bail!(
                    "{name} is in {} and in {} with different rows: these tables come from different runs; merge \
                     the tables of one run (mpnn status OUT says whether it is complete)",
                    other.display(),
                    t.display()
                ),
                Some(_) => duplicates += 1,
                None => {
                    rows.insert(name, (t.clone(), text));
                }
            }
        }
    }
    let mut text = if out_kind == "csv" { header } else { String::new() };
    for (_, r) in rows.values() {
        text.push_str(r);
    }
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    structure::write_atomic(&a.out, text.as_bytes()).with_context(|| format!("{}: cannot write", a.out.display()))?;
    println!(
        "wrote {}: {} structures from {} tables{}",
        a.out.display(),
        rows.len(),
        a.tables.len(),
        if duplicates > 0 {
            format!(" ({duplicates} found in two tables with the same rows, kept once)")
        } else {
            String::new()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_first_fields() {
        let r = csv_records("a,1,x\n\"b,c\",2,y\n\"d\"\"e\nf\",3,z\n").unwrap();
        let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b,c", "d\"e\nf"]);
        assert_eq!(r[2].1, "\"d\"\"e\nf\",3,z\n");
        assert!(csv_records("a,1").is_err());
    }
}
