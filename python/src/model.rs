//! `Model`: a loaded checkpoint and the jobs (score, probabilities, design), each a call of the
//! library's `mpnn::job` with the GIL released.

use std::path::PathBuf;
use std::sync::Arc;

use mpnn::alphabet::{self, VOCAB};
use mpnn::checkpoint::WeightsQuery;
use mpnn::featurize::{featurize, Constraints, Features};
use mpnn::job::{self, DesignOptions, JobError, Labels, ResidueConstraints};
use mpnn::kernels::precision::Precision;
use mpnn::output::designed_sequence;
use mpnn::spec::{ResidueItem, ResidueSpec, TiedSpec};
use mpnn::structure::Protein;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{check_passes, strings};
use crate::err;
use crate::results::{array_f32, array_i64, one_or_list, Designs, Scores};
use crate::structure::structures as structure_list;

/// How the library's messages name this package's options (`fixed=`, `chains=` ...).
const LABELS: Labels = Labels::KEYWORDS;

/// A ProteinMPNN checkpoint loaded for the jobs.
#[pyclass(module = "mpnn_rs", frozen)]
pub struct Model {
    inner: Arc<job::Model>,
}

/// Whether `weights` names a file rather than an official model name.
fn is_path(weights: &str) -> bool {
    let lower = weights.to_ascii_lowercase();
    lower.ends_with(".pt")
        || lower.ends_with(".safetensors")
        || weights.contains(std::path::MAIN_SEPARATOR)
        || weights.contains('/')
        || std::path::Path::new(weights).is_file()
}

/// `value` as a list of results when a list was given, else the single result.
fn chain_list(chains: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    chains.map(|c| strings(c, "chains=")).transpose()
}

/// A residue spec given as a string (`"A1-10 B"`) or a list of items.
fn residue_spec(value: Option<&Bound<'_, PyAny>>, option: &str) -> PyResult<Option<ResidueSpec>> {
    let Some(v) = value else { return Ok(None) };
    let text = strings(v, option)?.join(" ");
    text.parse::<ResidueSpec>().map(Some).map_err(|e| err(format!("{option} \"{text}\": {e}")))
}

/// A letter of the model's alphabet (`option` names the argument in messages).
fn letter(text: &str, option: &str) -> PyResult<char> {
    let mut it = text.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if alphabet::index_of(c).is_some() && c != '-' => Ok(c),
        _ => Err(err(format!("{option} `{text}` is not an amino-acid letter; use one of {}", alphabet::ALPHABET))),
    }
}

/// `{"W": 2.0, ...}` as (letter, bias) pairs.
fn bias_pairs(d: &Bound<'_, PyDict>, option: &str) -> PyResult<Vec<(char, f32)>> {
    let mut out = Vec::new();
    for (k, v) in d.iter() {
        let k: String = k.extract().map_err(|_| err(format!("{option} keys must be one-letter strings like \"W\"")))?;
        let x: f64 = v.extract().map_err(|_| err(format!("{option} `{k}`: the bias must be a number")))?;
        if !x.is_finite() {
            return Err(err(format!("{option} `{k}`: the bias {x} is not a finite number")));
        }
        out.push((letter(&k, option)?, x as f32));
    }
    Ok(out)
}

fn residue_item(key: &str, option: &str) -> PyResult<ResidueItem> {
    key.parse::<ResidueItem>().map_err(|e| err(format!("{option} key \"{key}\": {e}")))
}

#[pymethods]
impl Model {
    /// Loads a checkpoint by official name (`v_48_020`) or path (`.pt` / `.safetensors`).
    #[staticmethod]
    #[pyo3(signature = (weights = PathBuf::from("v_48_020"), *, ca_only = None, soluble = false, weights_dir = None, offline = false, k = None, precision = "f32", device = "auto"))]
    #[allow(clippy::too_many_arguments)]
    fn load(
        py: Python<'_>,
        weights: PathBuf,
        ca_only: Option<bool>,
        soluble: bool,
        weights_dir: Option<PathBuf>,
        offline: bool,
        k: Option<usize>,
        precision: &str,
        device: &str,
    ) -> PyResult<Model> {
        if device != "auto" && device != "cpu" {
            return Err(err(format!(
                "device=\"{device}\": this build runs on the CPU only; use device=\"auto\" or device=\"cpu\""
            )));
        }
        let precision: Precision = precision.parse().map_err(|e| err(format!("precision=\"{precision}\": {e}")))?;
        let text = weights.to_string_lossy().into_owned();
        let model = py
            .allow_threads(|| -> Result<job::Model, JobError> {
                let base = if is_path(&text) && weights_dir.is_none() {
                    job::Model::from_file(&weights, ca_only, &LABELS)?
                } else {
                    let query = WeightsQuery {
                        path: None,
                        folder: weights_dir.clone(),
                        model_name: text.clone(),
                        ca_only: ca_only.unwrap_or(false),
                        soluble,
                        offline: offline || std::env::var("MPNN_OFFLINE").is_ok_and(|v| v == "1"),
                    };
                    job::Model::load(&query, Some(ca_only.unwrap_or(false)), &LABELS)?
                };
                if k.is_none() && precision == Precision::F32 {
                    return Ok(base);
                }
                base.configured(None, k, Some(precision), &LABELS)
            })
            .map_err(err)?;
        Ok(Model { inner: Arc::new(model) })
    }

    /// The model's name (the weights file's stem, e.g. `v_48_020`).
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }
    /// The weights file.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }
    /// Whether the model reads CA coordinates only.
    #[getter]
    fn ca_only(&self) -> bool {
        self.inner.ca_only()
    }
    /// Neighbours per residue this model runs with.
    #[getter]
    fn k(&self) -> usize {
        self.inner.engine().arch().k
    }
    /// The checkpoint's training noise level (Å).
    #[getter]
    fn noise_level(&self) -> f64 {
        self.inner.noise_level()
    }
    /// The approximations of the float32 model this configuration makes (empty: exact).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings().to_vec()
    }

    fn __repr__(&self) -> String {
        format!("Model(name={:?}, ca_only={}, k={})", self.inner.name(), self.inner.ca_only(), self.k())
    }

    /// Official scores of `sequences` (default: the native sequence) on each structure.
    #[pyo3(signature = (structures, sequences = None, *, passes = 1, seed = 37, chains = None))]
    fn score(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        sequences: Option<&Bound<'_, PyAny>>,
        passes: usize,
        seed: u64,
        chains: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let (proteins, list) = structure_list(structures)?;
        let chains = chain_list(chains)?;
        let sequences = sequences.map(|s| strings(s, "sequences")).transpose()?;
        check_passes(passes)?;
        let done = each_released(py, &proteins, |p| {
            let f = self.features(p, chains.as_deref())?;
            let seqs: Vec<Vec<u8>> = match &sequences {
                None => vec![f.s.clone()],
                Some(v) => v
                    .iter()
                    .enumerate()
                    .map(|(i, s)| job::parse_sequence(&f, s, "sequences=", &format!("sequence {}", i + 1)))
                    .collect::<Result<_, _>>()?,
            };
            let scored = job::score(&self.inner, &f, &seqs, passes, seed)?;
            Ok((f, seqs, scored))
        })?;
        let mut out = Vec::with_capacity(done.len());
        for (f, seqs, scored) in done {
            let (n, l) = (seqs.len(), f.len());
            let mut scores = Vec::with_capacity(n * passes);
            let mut global = Vec::with_capacity(n * passes);
            let mut lp = Vec::with_capacity(n * passes * l * VOCAB);
            for per_seq in scored {
                for (sc, log_probs) in per_seq {
                    scores.push(sc.score);
                    global.push(sc.global_score);
                    lp.extend(log_probs);
                }
            }
            let r = Scores {
                name: f.name.clone(),
                sequences: seqs.iter().map(|s| designed_sequence(s, &f.chain_m, &f.masked_chain_lengths)).collect(),
                scores: array_f32(py, scores, &[n, passes])?,
                global_scores: array_f32(py, global, &[n, passes])?,
                log_probs: array_f32(py, lp, &[n, passes, l, VOCAB])?,
                chain_order: f.chain_order.clone(),
            };
            out.push(Py::new(py, r)?.into_any());
        }
        one_or_list(py, out, list)
    }

    /// Official `unconditional_probs()`: log-probabilities `[L, 21]` given the backbone alone.
    #[pyo3(signature = (structures, *, chains = None))]
    fn unconditional_probs(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        chains: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let (proteins, list) = structure_list(structures)?;
        let chains = chain_list(chains)?;
        let done = each_released(py, &proteins, |p| {
            let f = self.features(p, chains.as_deref())?;
            Ok((f.len(), job::unconditional_probs(&self.inner, &f)?))
        })?;
        let out = done.into_iter().map(|(l, lp)| array_f32(py, lp, &[l, VOCAB])).collect::<PyResult<Vec<_>>>()?;
        one_or_list(py, out, list)
    }

    /// Official `conditional_probs()`: log-probabilities `[passes, L, 21]` of each position
    /// given the rest of the native sequence (or, with `backbone_only`, the backbone alone).
    #[pyo3(signature = (structures, *, passes = 1, seed = 37, backbone_only = false, chains = None))]
    fn conditional_probs(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        passes: usize,
        seed: u64,
        backbone_only: bool,
        chains: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let (proteins, list) = structure_list(structures)?;
        let chains = chain_list(chains)?;
        check_passes(passes)?;
        let done = each_released(py, &proteins, |p| {
            let f = self.features(p, chains.as_deref())?;
            let v = job::conditional_probs(&self.inner, &f, passes, seed, backbone_only)?;
            Ok((f.len(), v.concat()))
        })?;
        let out =
            done.into_iter().map(|(l, lp)| array_f32(py, lp, &[passes, l, VOCAB])).collect::<PyResult<Vec<_>>>()?;
        one_or_list(py, out, list)
    }

    /// Designs sequences for each structure (the official sampler with every constraint).
    #[pyo3(signature = (
        structures, *, num_seqs = 1, temperature = None, seed = 37, chains = None, fixed = None, redesign = None,
        tied = None, homo_oligomer = false, bias = None, omit = None, bias_by_residue = None, omit_by_residue = None,
        backbone_noise = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn design(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        num_seqs: usize,
        temperature: Option<&Bound<'_, PyAny>>,
        seed: u64,
        chains: Option<&Bound<'_, PyAny>>,
        fixed: Option<&Bound<'_, PyAny>>,
        redesign: Option<&Bound<'_, PyAny>>,
        tied: Option<&Bound<'_, PyAny>>,
        homo_oligomer: bool,
        bias: Option<&Bound<'_, PyDict>>,
        omit: Option<&str>,
        bias_by_residue: Option<&Bound<'_, PyDict>>,
        omit_by_residue: Option<&Bound<'_, PyDict>>,
        backbone_noise: f32,
    ) -> PyResult<PyObject> {
        let (proteins, list) = structure_list(structures)?;
        let chains = chain_list(chains)?;
        let temperatures: Vec<f64> = match temperature {
            None => vec![0.1],
            Some(t) => match t.extract::<f64>() {
                Ok(v) => vec![v],
                Err(_) => t
                    .extract::<Vec<f64>>()
                    .map_err(|_| err("temperature= must be a number or a list of numbers, like 0.1 or [0.1, 0.2]"))?,
            },
        };
        let mut bias_aa = [0f32; VOCAB];
        if let Some(b) = bias {
            for (l, v) in bias_pairs(b, "bias=")? {
                bias_aa[alphabet::index_of(l).unwrap_or(alphabet::UNKNOWN) as usize] += v;
            }
        }
        // The official default omits X; omit= adds letters to it (the command line's --omit).
        let mut omit_letters = String::from("X");
        if let Some(o) = omit {
            let letters = mpnn::spec::parse_letters(o).map_err(|e| err(format!("omit=\"{o}\": {e}")))?;
            for c in letters.chars() {
                if !omit_letters.contains(c) {
                    omit_letters.push(c);
                }
            }
        }
        let tied = match tied {
            None => None,
            Some(t) => {
                let text = strings(t, "tied=")?.join("|");
                Some(text.parse::<TiedSpec>().map_err(|e| err(format!("tied=\"{text}\": {e}")))?)
            }
        };
        let mut by_residue_bias = Vec::new();
        if let Some(d) = bias_by_residue {
            for (k, v) in d.iter() {
                let key: String =
                    k.extract().map_err(|_| err("bias_by_residue= keys must be residue specs like \"A12\""))?;
                let row = v.downcast::<PyDict>().map_err(|_| {
                    err(format!("bias_by_residue= `{key}` must map to {{letter: bias}}, like {{\"W\": 2.0}}"))
                })?;
                by_residue_bias.push((residue_item(&key, "bias_by_residue=")?, bias_pairs(row, "bias_by_residue=")?));
            }
        }
        let mut by_residue_omit = Vec::new();
        if let Some(d) = omit_by_residue {
            for (k, v) in d.iter() {
                let key: String =
                    k.extract().map_err(|_| err("omit_by_residue= keys must be residue specs like \"A12\""))?;
                let letters: String = v
                    .extract()
                    .map_err(|_| err(format!("omit_by_residue= `{key}` must map to letters, like \"CW\"")))?;
                by_residue_omit.push((residue_item(&key, "omit_by_residue=")?, letters));
            }
        }
        let residue = ResidueConstraints {
            fixed: residue_spec(fixed, "fixed=")?,
            redesign: residue_spec(redesign, "redesign=")?,
            tied,
            homo_oligomer,
            bias_by_residue: by_residue_bias,
            omit_by_residue: by_residue_omit,
            labels: LABELS,
        };
        let opts = DesignOptions {
            temperatures,
            per_temperature: num_seqs,
            seed,
            backbone_noise,
            omit: omit_letters,
            bias_aa,
            labels: LABELS,
            ..DesignOptions::default()
        };
        opts.validate().map_err(err)?;
        let done = each_released(py, &proteins, |p| {
            p.validate(self.inner.ca_only())?;
            let sel = job::select_chains(p, chains.as_deref(), &LABELS)?;
            let f = job::prepare(p, &sel, Constraints::default(), &residue, &opts.omit, self.inner.ca_only())?;
            let d = job::design(&self.inner, &f, &opts, &|_| {})?;
            Ok((f, d))
        })?;
        let mut out = Vec::with_capacity(done.len());
        for (f, d) in done {
            let (n, l) = (d.designs.len(), f.len());
            let mut log_probs = Vec::with_capacity(n * l * VOCAB);
            let mut probs = Vec::with_capacity(n * l * VOCAB);
            let mut orders = Vec::with_capacity(n * l);
            for x in &d.designs {
                log_probs.extend_from_slice(&x.log_probs);
                probs.extend_from_slice(&x.sample.probs);
                orders.extend(x.sample.decoding_order.iter().map(|&i| i as i64));
            }
            let r = Designs {
                name: f.name.clone(),
                sequences: d.designs.iter().map(|x| x.designed_sequence(&f)).collect(),
                full_sequences: d
                    .designs
                    .iter()
                    .map(|x| x.sample.s.iter().map(|&a| alphabet::letter_of(a)).collect())
                    .collect(),
                scores: array_f32(py, d.designs.iter().map(|x| x.score).collect(), &[n])?,
                global_scores: array_f32(py, d.designs.iter().map(|x| x.global_score).collect(), &[n])?,
                recovery: array_f32(py, d.designs.iter().map(|x| x.recovery).collect(), &[n])?,
                log_probs: array_f32(py, log_probs, &[n, l, VOCAB])?,
                probs: array_f32(py, probs, &[n, l, VOCAB])?,
                decoding_orders: array_i64(py, orders, &[n, l])?,
                temperatures: numpy::PyArray1::from_vec(py, d.designs.iter().map(|x| x.temperature).collect())
                    .into_any()
                    .unbind(),
                native_score: d.native.score,
                native_global_score: d.native.global_score,
                native_sequence: designed_sequence(&f.s, &f.chain_m, &f.masked_chain_lengths),
                chain_order: f.chain_order.clone(),
            };
            out.push(Py::new(py, r)?.into_any());
        }
        one_or_list(py, out, list)
    }
}

impl Model {
    /// Checks `p` for this model and featurizes it as the command line's score and probs jobs
    /// do: `chains` designed (default all), no other constraint.
    fn features(&self, p: &Protein, chains: Option<&[String]>) -> Result<Features, JobError> {
        p.validate(self.inner.ca_only())?;
        let sel = job::select_chains(p, chains, &LABELS)?;
        Ok(featurize(p, &sel, &Constraints::default(), self.inner.ca_only())?)
    }
}

/// Runs `job` on every structure with the GIL released; the first error stops the run and
/// becomes the Python exception.
fn each_released<T: Send>(
    py: Python<'_>,
    proteins: &[Arc<Protein>],
    job: impl Fn(&Protein) -> Result<T, JobError> + Send + Sync,
) -> PyResult<Vec<T>> {
    py.allow_threads(|| proteins.iter().map(|p| job(p)).collect::<Result<Vec<_>, JobError>>()).map_err(err)
}
