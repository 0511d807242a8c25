//! `LigandModel`: a LigandMPNN-family checkpoint and its jobs (design, score, probabilities on
//! structure files read with LigandMPNN's parser), each a call of `mpnn::job::ligand` with the
//! GIL released. Results are dicts of plain values and numpy arrays.

use std::path::PathBuf;
use std::sync::Arc;

use mpnn::alphabet::VOCAB;
use mpnn::job::ligand::{self, LigandModel as Inner, LigandOptions, LigandPrepared, LigandSelection, ProbsKind};
use mpnn::job::JobError;
use mpnn::ligand::ModelType;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::convert::{check_passes, strings};
use crate::err;
use crate::results::{array_f32, array_i64, one_or_list};

/// A LigandMPNN-family checkpoint (ligand_mpnn, protein_mpnn, soluble_mpnn, the membrane models)
/// loaded once, for any number of jobs on structure files.
#[pyclass(module = "mpnn_rs", frozen)]
pub struct LigandModel {
    inner: Arc<Inner>,
}

/// Structure paths: one path (a single result) or a list (a list of results).
fn paths(value: &Bound<'_, PyAny>) -> PyResult<(Vec<PathBuf>, bool)> {
    if value.downcast::<PyString>().is_ok() || value.hasattr("__fspath__")? {
        let p: PathBuf = value.extract()?;
        return Ok((vec![p], false));
    }
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| err("structures must be a path or a list of paths"))? {
        out.push(item?.extract::<PathBuf>().map_err(|_| err("structures must be a path or a list of paths"))?);
    }
    if out.is_empty() {
        return Err(err("structures is empty: give at least one structure file"));
    }
    Ok((out, true))
}

/// `chains=`: chain ids to read (none: every chain).
fn chain_names(chains: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    Ok(chains.map(|c| strings(c, "chains=")).transpose()?.unwrap_or_default())
}

fn opt_text(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    value.map(|v| strings(v, what).map(|s| s.join(" "))).transpose()
}

/// The dict entries every result has: name, residue ids, warnings, notes.
fn base_dict<'py>(py: Python<'py>, p: &LigandPrepared) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &p.name)?;
    d.set_item("residue_ids", p.residue_ids.clone())?;
    d.set_item("designed", p.design_mask().iter().map(|&m| m > 0.0).collect::<Vec<bool>>())?;
    d.set_item("context_atoms", p.context_atoms)?;
    d.set_item("warnings", p.warnings.clone())?;
    d.set_item("notes", p.notes.clone())?;
    Ok(d)
}

/// Context / membrane keywords shared by every job.
struct Context {
    opts: LigandOptions,
}

#[allow(clippy::too_many_arguments)]
fn context(
    use_atom_context: bool,
    cutoff_for_score: f32,
    side_chain_context: bool,
    zero_occupancy: bool,
    transmembrane_buried: Option<&Bound<'_, PyAny>>,
    transmembrane_interface: Option<&Bound<'_, PyAny>>,
    global_transmembrane_label: i32,
) -> PyResult<Context> {
    Ok(Context {
        opts: LigandOptions {
            use_atom_context,
            cutoff_for_score,
            side_chain_context,
            zero_occupancy,
            transmembrane_buried: opt_text(transmembrane_buried, "transmembrane_buried=")?.unwrap_or_default(),
            transmembrane_interface: opt_text(transmembrane_interface, "transmembrane_interface=")?.unwrap_or_default(),
            global_transmembrane_label,
        },
    })
}

impl LigandModel {
    /// Reads and prepares every structure of `structures` (a path or a list of paths: the
    /// `bool` says which) with the GIL released; the first bad file stops before any job runs.
    fn prepare_all(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        sel: &LigandSelection,
        ctx: &Context,
    ) -> PyResult<(Vec<LigandPrepared>, bool)> {
        let (files, list) = paths(structures)?;
        let prepared = py
            .allow_threads(|| {
                files
                    .iter()
                    .map(|f| ligand::prepare(&self.inner, f, sel, &ctx.opts))
                    .collect::<Result<Vec<_>, JobError>>()
            })
            .map_err(err)?;
        Ok((prepared, list))
    }
}

#[pymethods]
impl LigandModel {
    /// Loads a checkpoint in LigandMPNN's layout; `model_type=None` takes it from the tensors
    /// (atom-context tensors: ligand_mpnn; ProteinMPNN's layout: protein_mpnn).
    #[staticmethod]
    #[pyo3(signature = (path, *, model_type = None, side_chain_context = false))]
    fn load(py: Python<'_>, path: PathBuf, model_type: Option<&str>, side_chain_context: bool) -> PyResult<Self> {
        let t = model_type.map(|t| t.parse::<ModelType>().map_err(|e| err(format!("model_type=: {e}")))).transpose()?;
        let inner = py.allow_threads(|| Inner::from_file(&path, t, side_chain_context)).map_err(err)?;
        Ok(LigandModel { inner: Arc::new(inner) })
    }

    /// The model type (`ligand_mpnn`, ...).
    #[getter]
    fn model_type(&self) -> String {
        self.inner.model_type().to_string()
    }

    /// The file name without its extension.
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// Neighbours per residue (`num_edges`).
    #[getter]
    fn k(&self) -> usize {
        self.inner.num_edges()
    }

    fn __repr__(&self) -> String {
        format!(
            "LigandModel({}, model_type={}, k={})",
            self.inner.name(),
            self.inner.model_type(),
            self.inner.num_edges()
        )
    }

    /// Designs `num_seqs` sequences per temperature for each structure file; the numbers of
    /// `mpnn design` (and of `mpnn ligandmpnn run --batch_size 1`) with the same seed.
    #[pyo3(signature = (
        structures, *, num_seqs = 1, temperature = None, seed = 37, chains = None, fixed = None,
        redesign = None, tied = None, homo_oligomer = false, omit = "", bias = "",
        use_atom_context = true, cutoff_for_score = 8.0, side_chain_context = false,
        zero_occupancy = false, transmembrane_buried = None, transmembrane_interface = None,
        global_transmembrane_label = 0
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
        omit: &str,
        bias: &str,
        use_atom_context: bool,
        cutoff_for_score: f32,
        side_chain_context: bool,
        zero_occupancy: bool,
        transmembrane_buried: Option<&Bound<'_, PyAny>>,
        transmembrane_interface: Option<&Bound<'_, PyAny>>,
        global_transmembrane_label: i32,
    ) -> PyResult<PyObject> {
        let temperatures: Vec<f64> = match temperature {
            None => vec![0.1],
            Some(t) => match t.extract::<f64>() {
                Ok(v) => vec![v],
                Err(_) => t.extract::<Vec<f64>>().map_err(|_| err("temperature= must be a number or a list"))?,
            },
        };
        let sel = LigandSelection {
            chains: chain_names(chains)?,
            fixed: opt_text(fixed, "fixed=")?,
            redesign: opt_text(redesign, "redesign=")?,
            tied: opt_text(tied, "tied=")?.map(|t| t.replace(' ', "|")),
            homo_oligomer,
            omit: omit.to_string(),
            bias: bias.to_string(),
            ..Default::default()
        };
        let ctx = context(
            use_atom_context,
            cutoff_for_score,
            side_chain_context,
            zero_occupancy,
            transmembrane_buried,
            transmembrane_interface,
            global_transmembrane_label,
        )?;
        let (prepared, list) = self.prepare_all(py, structures, &sel, &ctx)?;
        let reads = self.inner.reads_context(&ctx.opts);
        let mut out = Vec::new();
        for p in &prepared {
            let (designs, native) = py
                .allow_threads(|| ligand::design_with_native(&self.inner, p, &temperatures, num_seqs, seed))
                .map_err(err)?;
            let d = base_dict(py, p)?;
            d.set_item("native", p.designed_sequence(&p.features.s))?;
            d.set_item("native_score", native.score)?;
            d.set_item("native_global_score", native.global_score)?;
            let l = p.len();
            let rows = PyList::empty(py);
            for x in &designs {
                let r = PyDict::new(py);
                r.set_item("sequence", p.designed_sequence(&x.s))?;
                r.set_item("temperature", x.temperature)?;
                r.set_item("sample", x.number)?;
                r.set_item("score", x.score)?;
                r.set_item("global_score", x.global_score)?;
                r.set_item("recovery", x.confidence.seq_rec)?;
                r.set_item("overall_confidence", x.confidence.overall_confidence)?;
                let lc = (reads && p.context_atoms > 0).then_some(x.confidence.ligand_confidence);
                r.set_item("ligand_confidence", lc)?;
                r.set_item("log_probs", array_f32(py, x.log_probs.clone(), &[l, VOCAB])?)?;
                r.set_item(
                    "decoding_order",
                    array_i64(py, x.decoding_order.iter().map(|&v| v as i64).collect(), &[l])?,
                )?;
                rows.append(r)?;
            }
            d.set_item("designs", rows)?;
            out.push(d.into_any().unbind());
        }
        one_or_list(py, out, list)
    }

    /// The native sequence's autoregressive scores, `passes` passes (`mpnn score`):
    /// `scores` / `global_scores` [passes], `log_probs` [passes, L, 21].
    #[pyo3(signature = (
        structures, *, passes = 1, seed = 37, chains = None, use_atom_context = true,
        cutoff_for_score = 8.0, side_chain_context = false, zero_occupancy = false,
        transmembrane_buried = None, transmembrane_interface = None, global_transmembrane_label = 0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        passes: usize,
        seed: u64,
        chains: Option<&Bound<'_, PyAny>>,
        use_atom_context: bool,
        cutoff_for_score: f32,
        side_chain_context: bool,
        zero_occupancy: bool,
        transmembrane_buried: Option<&Bound<'_, PyAny>>,
        transmembrane_interface: Option<&Bound<'_, PyAny>>,
        global_transmembrane_label: i32,
    ) -> PyResult<PyObject> {
        check_passes(passes)?;
        let sel = LigandSelection { chains: chain_names(chains)?, ..Default::default() };
        let ctx = context(
            use_atom_context,
            cutoff_for_score,
            side_chain_context,
            zero_occupancy,
            transmembrane_buried,
            transmembrane_interface,
            global_transmembrane_label,
        )?;
        let (prepared, list) = self.prepare_all(py, structures, &sel, &ctx)?;
        let mut out = Vec::new();
        for p in &prepared {
            let res = py
                .allow_threads(|| ligand::score(&self.inner, p, std::slice::from_ref(&p.features.s), passes, seed))
                .map_err(err)?;
            let l = p.len();
            let d = base_dict(py, p)?;
            d.set_item("scores", array_f32(py, res[0].iter().map(|r| r.0.score).collect(), &[passes])?)?;
            d.set_item("global_scores", array_f32(py, res[0].iter().map(|r| r.0.global_score).collect(), &[passes])?)?;
            d.set_item(
                "log_probs",
                array_f32(py, res[0].iter().flat_map(|r| r.1.iter().copied()).collect(), &[passes, l, VOCAB])?,
            )?;
            out.push(d.into_any().unbind());
        }
        one_or_list(py, out, list)
    }

    /// Per-position log-probabilities `[passes, L, 21]` (`mpnn probs`): `kind` is
    /// "unconditional", "conditional" or "backbone_only".
    #[pyo3(signature = (
        structures, *, kind = "conditional", passes = 1, seed = 37, chains = None,
        use_atom_context = true, cutoff_for_score = 8.0, side_chain_context = false,
        zero_occupancy = false, transmembrane_buried = None, transmembrane_interface = None,
        global_transmembrane_label = 0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn probs(
        &self,
        py: Python<'_>,
        structures: &Bound<'_, PyAny>,
        kind: &str,
        passes: usize,
        seed: u64,
        chains: Option<&Bound<'_, PyAny>>,
        use_atom_context: bool,
        cutoff_for_score: f32,
        side_chain_context: bool,
        zero_occupancy: bool,
        transmembrane_buried: Option<&Bound<'_, PyAny>>,
        transmembrane_interface: Option<&Bound<'_, PyAny>>,
        global_transmembrane_label: i32,
    ) -> PyResult<PyObject> {
        let which = match kind {
            "unconditional" => ProbsKind::Unconditional,
            "conditional" => ProbsKind::Conditional,
            "backbone_only" => ProbsKind::BackboneOnly,
            other => {
                return Err(err(format!(
                    "kind={other:?}: give \"unconditional\", \"conditional\" or \"backbone_only\""
                )))
            }
        };
        check_passes(passes)?;
        let sel = LigandSelection { chains: chain_names(chains)?, ..Default::default() };
        let ctx = context(
            use_atom_context,
            cutoff_for_score,
            side_chain_context,
            zero_occupancy,
            transmembrane_buried,
            transmembrane_interface,
            global_transmembrane_label,
        )?;
        let (prepared, list) = self.prepare_all(py, structures, &sel, &ctx)?;
        let mut out = Vec::new();
        for p in &prepared {
            let lp = py.allow_threads(|| ligand::probs(&self.inner, p, passes, seed, which)).map_err(err)?;
            let d = base_dict(py, p)?;
            d.set_item("log_probs", array_f32(py, lp.concat(), &[passes, p.len(), VOCAB])?)?;
            out.push(d.into_any().unbind());
        }
        one_or_list(py, out, list)
    }
}
