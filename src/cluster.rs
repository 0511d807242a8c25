//! Running on a cluster: which shard a Slurm array task is, how many threads it was given, and
//! the sbatch script that runs `mpnn design` as a job array.
//!
//! Everything here is pure (the environment comes in as a lookup function), so the rules are
//! unit-tested without Slurm:
//!
//! ```
//! use mpnn::cluster::array_shard;
//! // `sbatch --array=0-3`: task 2 is the third of four.
//! let env = |k: &str| match k {
//!     "SLURM_ARRAY_TASK_ID" => Some("2".to_string()),
//!     "SLURM_ARRAY_TASK_MIN" => Some("0".to_string()),
//!     "SLURM_ARRAY_TASK_MAX" => Some("3".to_string()),
//!     _ => None,
//! };
//! let task = array_shard(env).unwrap().unwrap();
//! assert_eq!(task.shard.to_string(), "3/4");
//! ```

use std::fmt::Write as _;

use crate::spec::Shard;

/// A Slurm variable that cannot be used, named in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("{var}={value}: not a whole number (Slurm sets it to one; unset it or fix it)")]
    NotANumber { var: &'static str, value: String },
    #[error("{var} is not set, so the shard of this array task cannot be computed; {why}")]
    Missing { var: &'static str, why: &'static str },
    #[error("{var}={value}: {why}")]
    Bad { var: &'static str, value: String, why: String },
}

/// This array task's shard, and how it was computed (for the line that says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayTask {
    pub shard: Shard,
    /// The task id as Slurm gave it.
    pub task_id: u64,
    /// E.g. `SLURM_ARRAY_TASK_ID=7 in the array 1-13:3`.
    pub explanation: String,
}

const ID: &str = "SLURM_ARRAY_TASK_ID";
const MIN: &str = "SLURM_ARRAY_TASK_MIN";
const MAX: &str = "SLURM_ARRAY_TASK_MAX";
const STEP: &str = "SLURM_ARRAY_TASK_STEP";
const COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// Threads per task.
pub const CPUS_PER_TASK: &str = "SLURM_CPUS_PER_TASK";

fn number(var: &'static str, env: &impl Fn(&str) -> Option<String>) -> Result<Option<u64>, ClusterError> {
    match env(var) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => {
            v.trim().parse::<u64>().map(Some).map_err(|_| ClusterError::NotANumber { var, value: v.to_string() })
        }
    }
}

/// The shard of this Slurm array task, from `SLURM_ARRAY_TASK_ID` and the array's shape:
/// `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_MAX` (or `SLURM_ARRAY_TASK_COUNT`), with
/// `SLURM_ARRAY_TASK_STEP` (default 1, or what MIN, MAX and COUNT imply). Task `MIN + k*STEP` is
/// shard `k+1` of `(MAX-MIN)/STEP + 1`, so arrays may start at 0 or 1 and may have steps
/// (`--array=1-13:3`: ids 1, 4, 7, 10, 13 are shards 1/5 … 5/5). `None` when
/// `SLURM_ARRAY_TASK_ID` is not set (not an array task).
///
/// Arrays that are not an evenly stepped range (`--array=1,2,7`) are refused: their shape cannot
/// be read from the environment. So is a task id outside the range or off the step.
pub fn array_shard(env: impl Fn(&str) -> Option<String>) -> Result<Option<ArrayTask>, ClusterError> {
    let Some(id) = number(ID, &env)? else { return Ok(None) };
    let min = number(MIN, &env)?.ok_or(ClusterError::Missing {
        var: MIN,
        why: "Slurm sets it for every array task; outside an array give --shard I/N",
    })?;
    let max = number(MAX, &env)?;
    let count = number(COUNT, &env)?;
    let step = match number(STEP, &env)? {
        Some(0) => {
            return Err(ClusterError::Bad { var: STEP, value: "0".into(), why: "an array step is at least 1".into() })
        }
        Some(s) => s,
        // Implied by MIN, MAX and COUNT when they are all known, else 1.
        None => match (max, count) {
            (Some(max), Some(c)) if c > 1 && max > min && (max - min) % (c - 1) == 0 => (max - min) / (c - 1),
            _ => 1,
        },
    };
    let n = match (max, count) {
        (Some(max), _) if max < min => {
            return Err(ClusterError::Bad {
                var: MAX,
                value: max.to_string(),
                why: format!("the array ends before it starts ({MIN}={min})"),
            })
        }
        (Some(max), Some(c)) => {
            let n = (max - min) / step + 1;
            if (max - min) % step != 0 || n != c {
                return Err(ClusterError::Bad {
                    var: COUNT,
                    value: c.to_string(),
                    why: format!(
                        "the array {min}-{max}:{step} is not an evenly stepped range of {c} tasks (e.g. \
                         --array=1,2,7), so this task's shard cannot be computed; give --shard I/N \
                         explicitly (mpnn slurm writes scripts that do)"
                    ),
                });
            }
            n
        }
        (Some(max), None) => {
            if (max - min) % step != 0 {
                return Err(ClusterError::Bad {
                    var: MAX,
                    value: max.to_string(),
                    why: format!("not on the array's step {step} from {MIN}={min}"),
                });
            }
            (max - min) / step + 1
        }
        (None, Some(0)) => {
            return Err(ClusterError::Bad { var: COUNT, value: "0".into(), why: "an array has at least 1 task".into() })
        }
        (None, Some(c)) => c,
        (None, None) => {
            return Err(ClusterError::Missing {
                var: MAX,
                why: "set SLURM_ARRAY_TASK_MAX or SLURM_ARRAY_TASK_COUNT (Slurm sets both), or give --shard I/N",
            })
        }
    };
    let last = min + (n - 1) * step;
    if id < min || id > last || (id - min) % step != 0 {
        return Err(ClusterError::Bad {
            var: ID,
            value: id.to_string(),
            why: format!(
                "not a task of the array {min}-{last}{} ({n} task{}); give --shard I/N explicitly",
                if step == 1 { String::new() } else { format!(":{step}") },
                if n == 1 { "" } else { "s" }
            ),
        });
    }
    let index = ((id - min) / step + 1) as usize;
    Ok(Some(ArrayTask {
        shard: Shard { index, count: n as usize },
        task_id: id,
        explanation: format!(
            "{ID}={id} in the array {min}-{last}{}",
            if step == 1 { String::new() } else { format!(":{step}") }
        ),
    }))
}

/// The threads Slurm gave this task (`SLURM_CPUS_PER_TASK`), if set.
pub fn cpus_per_task(env: impl Fn(&str) -> Option<String>) -> Result<Option<usize>, ClusterError> {
    match number(CPUS_PER_TASK, &env)? {
        Some(0) => {
            Err(ClusterError::Bad { var: CPUS_PER_TASK, value: "0".into(), why: "a task has at least 1 CPU".into() })
        }
        n => Ok(n.map(|n| n as usize)),
    }
}

/// A word as a POSIX shell reads it back unchanged (single-quoted unless it is plain).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=,+@%^".contains(&b))
        && !s.starts_with('=');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Where a design job array runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CPU nodes.
    #[default]
    Cpu,
    /// GPU nodes: one GPU per task (`--gres=gpu:1`).
    Gpu,
}

/// What an sbatch script for a design job array holds.
#[derive(Debug, Clone, Default)]
pub struct Sbatch {
    pub job_name: String,
    /// Array tasks = shards.
    pub tasks: usize,
    /// At most this many tasks at once (`%M`).
    pub parallel: Option<usize>,
    pub cpus_per_task: usize,
    pub device: Device,
    /// `--time`, as Slurm takes it (`1:00:00`, `30`, `1-00:00:00`).
    pub time: String,
    pub partition: Option<String>,
    pub mem: Option<String>,
    /// Other `#SBATCH` options, verbatim (`--account=x`).
    pub extra: Vec<String>,
    /// The folder the job runs in (relative paths of the command are relative to it).
    pub chdir: String,
    /// Slurm's log of each task (`%x-%A_%a.out` patterns allowed).
    pub log: String,
    /// The mpnn command, one word per element, without `--shard` and `--table` (they are added
    /// per task).
    pub command: Vec<String>,
    /// Each task's table: a path where `{task}` stands for the task id.
    pub table: String,
    /// Lines of `# ` comments at the top: how to submit, check and rerun.
    pub notes: Vec<String>,
}

impl Sbatch {
    /// The script text. Task `I` of `--array=1-N` runs `--shard I/N`, with the task id read from
    /// `SLURM_ARRAY_TASK_ID` itself (not the array's shape), so a resubmitted subset
    /// (`sbatch --array=2,4 SCRIPT`) runs exactly shards 2/N and 4/N.
    pub fn script(&self) -> String {
        let mut s = String::from("#!/bin/bash\n");
        for n in &self.notes {
            let _ = writeln!(s, "#{}{n}", if n.is_empty() { "" } else { " " });
        }
        let _ = writeln!(s, "#SBATCH --job-name={}", self.job_name);
        let _ = writeln!(
            s,
            "#SBATCH --array=1-{}{}",
            self.tasks,
            self.parallel.map(|m| format!("%{m}")).unwrap_or_default()
        );
        let _ = writeln!(s, "#SBATCH --ntasks=1");
        let _ = writeln!(s, "#SBATCH --cpus-per-task={}", self.cpus_per_task);
        if self.device == Device::Gpu {
            let _ = writeln!(s, "#SBATCH --gres=gpu:1");
        }
        let _ = writeln!(s, "#SBATCH --time={}", self.time);
        if let Some(p) = &self.partition {
            let _ = writeln!(s, "#SBATCH --partition={p}");
        }
        if let Some(m) = &self.mem {
            let _ = writeln!(s, "#SBATCH --mem={m}");
        }
        for e in &self.extra {
            let _ = writeln!(s, "#SBATCH {e}");
        }
        let _ = writeln!(s, "#SBATCH --chdir={}", self.chdir);
        let _ = writeln!(s, "#SBATCH --output={}", self.log);
        s.push_str("set -euo pipefail\n");
        let _ = writeln!(
            s,
            ": \"${{SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array whose task I runs shard I/{}}}\"",
            self.tasks
        );
        let _ = writeln!(s, "task=$SLURM_ARRAY_TASK_ID");
        if self.device == Device::Gpu {
            s.push_str(
                "# GPU nodes: the design runs on this task's GPU (--device gpu; a node without a usable\n\
                 # Vulkan/Metal/DX12 GPU stops with a clear error; see README \"GPU\").\n",
            );
        }
        s.push_str("# Threads: mpnn uses $SLURM_CPUS_PER_TASK. Reruns resume (finished structures are skipped).\n");
        let words: Vec<String> = self.command.iter().map(|w| shell_quote(w)).collect();
        let table = match self.table.split_once("{task}") {
            Some((a, b)) => format!(
                "{}\"$task\"{}",
                if a.is_empty() { String::new() } else { shell_quote(a) },
                if b.is_empty() { String::new() } else { shell_quote(b) }
            ),
            None => shell_quote(&self.table),
        };
        let _ = writeln!(s, "exec {} \\\n    --shard \"$task/{}\" --table {table}", words.join(" "), self.tasks);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn shard(pairs: &[(&str, &str)]) -> Result<Option<Shard>, ClusterError> {
        array_shard(env(pairs)).map(|t| t.map(|t| t.shard))
    }

    fn sh(index: usize, count: usize) -> Option<Shard> {
        Some(Shard { index, count })
    }

    #[test]
    fn no_array_no_shard() {
        assert_eq!(shard(&[]).unwrap(), None);
        assert_eq!(shard(&[("SLURM_JOB_ID", "5")]).unwrap(), None);
    }

    #[test]
    fn arrays_starting_at_zero_and_one() {
        for (id, want) in [("0", 1), ("1", 2), ("3", 4)] {
            let e = [(ID, id), (MIN, "0"), (MAX, "3"), (COUNT, "4"), (STEP, "1")];
            assert_eq!(shard(&e).unwrap(), sh(want, 4), "id {id}");
        }
        for (id, want) in [("1", 1), ("2", 2), ("4", 4)] {
            let e = [(ID, id), (MIN, "1"), (MAX, "4"), (COUNT, "4"), (STEP, "1")];
            assert_eq!(shard(&e).unwrap(), sh(want, 4), "id {id}");
        }
        // Without STEP and COUNT.
        assert_eq!(shard(&[(ID, "7"), (MIN, "5"), (MAX, "8")]).unwrap(), sh(3, 4));
    }

    #[test]
    fn stepped_arrays() {
        // --array=1-13:3 → 1, 4, 7, 10, 13.
        for (id, want) in [("1", 1), ("4", 2), ("7", 3), ("10", 4), ("13", 5)] {
            let e = [(ID, id), (MIN, "1"), (MAX, "13"), (STEP, "3"), (COUNT, "5")];
            assert_eq!(shard(&e).unwrap(), sh(want, 5), "id {id}");
        }
        // The step implied by MIN, MAX and COUNT.
        assert_eq!(shard(&[(ID, "10"), (MIN, "1"), (MAX, "13"), (COUNT, "5")]).unwrap(), sh(4, 5));
        // An id off the step.
        let e = array_shard(env(&[(ID, "5"), (MIN, "1"), (MAX, "13"), (STEP, "3")])).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_ID=5") && e.to_string().contains("1-13:3"), "{e}");
        let t = array_shard(env(&[(ID, "7"), (MIN, "1"), (MAX, "13"), (STEP, "3")])).unwrap().unwrap();
        assert_eq!(t.explanation, "SLURM_ARRAY_TASK_ID=7 in the array 1-13:3");
    }

    #[test]
    fn count_without_max() {
        assert_eq!(shard(&[(ID, "0"), (MIN, "0"), (COUNT, "3")]).unwrap(), sh(1, 3));
        assert_eq!(shard(&[(ID, "6"), (MIN, "2"), (COUNT, "3"), (STEP, "2")]).unwrap(), sh(3, 3));
        // COUNT alone: where the array starts is unknown.
        let e = array_shard(env(&[(ID, "2"), (COUNT, "4")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_MIN is not set"), "{e}");
        // Nothing about the size.
        let e = array_shard(env(&[(ID, "2"), (MIN, "1")])).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_MAX") && e.to_string().contains("COUNT"), "{e}");
    }

    #[test]
    fn ids_outside_the_array() {
        for id in ["0", "5", "99"] {
            let e = array_shard(env(&[(ID, id), (MIN, "1"), (MAX, "4"), (COUNT, "4")])).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("SLURM_ARRAY_TASK_ID={id}: not a task of the array 1-4 (4 tasks); give --shard I/N explicitly")
            );
        }
        let e = array_shard(env(&[(ID, "3"), (MIN, "0"), (COUNT, "3")])).unwrap_err();
        assert!(e.to_string().contains("array 0-2"), "{e}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = array_shard(env(&[(ID, "two"), (MIN, "1"), (MAX, "4")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SLURM_ARRAY_TASK_ID=two: not a whole number (Slurm sets it to one; unset it or fix it)"
        );
        let e = array_shard(env(&[(ID, "2"), (MIN, "-1"), (MAX, "4")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_MIN=-1"), "{e}");
        let e = array_shard(env(&[(ID, "2"), (MIN, "1"), (MAX, "4"), (STEP, "0")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_STEP=0"), "{e}");
        let e = array_shard(env(&[(ID, "2"), (MIN, "4"), (MAX, "1")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_MAX=1"), "{e}");
        let e = array_shard(env(&[(ID, "2"), (MIN, "1"), (MAX, "7"), (STEP, "1"), (COUNT, "3")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_COUNT=3") && e.to_string().contains("--shard"), "{e}");
        let e = array_shard(env(&[(ID, "0"), (MIN, "0"), (COUNT, "0")])).unwrap_err();
        assert!(e.to_string().starts_with("SLURM_ARRAY_TASK_COUNT=0"), "{e}");
    }

    #[test]
    fn cpus() {
        assert_eq!(cpus_per_task(env(&[])).unwrap(), None);
        assert_eq!(cpus_per_task(env(&[(CPUS_PER_TASK, "8")])).unwrap(), Some(8));
        assert!(cpus_per_task(env(&[(CPUS_PER_TASK, "0")]))
            .unwrap_err()
            .to_string()
            .starts_with("SLURM_CPUS_PER_TASK=0"));
        assert!(cpus_per_task(env(&[(CPUS_PER_TASK, "x")]))
            .unwrap_err()
            .to_string()
            .starts_with("SLURM_CPUS_PER_TASK=x"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--seed"), "--seed");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote("0.1 0.2"), "'0.1 0.2'");
    }

    #[test]
    fn script_lines() {
        let sb = Sbatch {
            job_name: "mpnn".into(),
            tasks: 4,
            parallel: Some(2),
            cpus_per_task: 8,
            device: Device::Gpu,
            time: "1:00:00".into(),
            chdir: "/home/me".into(),
            log: "/home/me/out/slurm/logs/%x-%A_%a.out".into(),
            command: vec!["/bin/mpnn".into(), "design".into(), "--sampling_temp".into(), "0.1 0.2".into()],
            table: "/home/me/out/slurm/tables/shard-{task}.csv".into(),
            ..Default::default()
        };
        let s = sb.script();
        for line in [
            "#SBATCH --array=1-4%2",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=1:00:00",
            "exec /bin/mpnn design --sampling_temp '0.1 0.2' \\",
            "    --shard \"$task/4\" --table /home/me/out/slurm/tables/shard-\"$task\".csv",
        ] {
            assert!(s.lines().any(|l| l == line), "{line}\n{s}");
        }
        // Every #SBATCH line comes before the first command.
        let first_cmd = s.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(s.lines().skip(first_cmd).all(|l| !l.starts_with("#SBATCH")), "{s}");
        let cpu = Sbatch { device: Device::Cpu, parallel: None, ..sb }.script();
        assert!(!cpu.contains("gres") && cpu.contains("#SBATCH --array=1-4\n"), "{cpu}");
    }
}
