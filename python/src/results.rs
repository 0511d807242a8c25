//! Result objects: plain containers of numpy arrays and strings.

use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// A float32 array of `shape` from flat data.
pub(crate) fn array_f32(py: Python<'_>, data: Vec<f32>, shape: &[usize]) -> PyResult<PyObject> {
    Ok(data.into_pyarray(py).reshape(shape)?.into_any().unbind())
}

/// An int64 array of `shape` from flat data.
pub(crate) fn array_i64(py: Python<'_>, data: Vec<i64>, shape: &[usize]) -> PyResult<PyObject> {
    Ok(data.into_pyarray(py).reshape(shape)?.into_any().unbind())
}

/// Scores of sequences on one structure (`Model.score`). With `n` sequences, `passes` passes
/// and `L` residues: `scores` and `global_scores` are `[n, passes]`, `log_probs`
/// `[n, passes, L, 21]`.
#[pyclass(module = "mpnn_rs", frozen, get_all)]
pub struct Scores {
    /// The structure's name.
    pub name: String,
    /// The scored sequences (all residues, chains in the model's order joined by `/`).
    pub sequences: Vec<String>,
    /// Official `score`: mean negative log-likelihood over the designed positions.
    pub scores: PyObject,
    /// Official `global_score`: mean negative log-likelihood over all residues.
    pub global_scores: PyObject,
    /// Log-probabilities of each pass.
    pub log_probs: PyObject,
    /// The model's chain order (designed chains first).
    pub chain_order: Vec<String>,
}

#[pymethods]
impl Scores {
    fn __repr__(&self) -> String {
        format!("Scores(name={:?}, sequences={})", self.name, self.sequences.len())
    }
    fn __len__(&self) -> usize {
        self.sequences.len()
    }
}

/// Designed sequences for one structure (`Model.design`), `n` = temperatures × `num_seqs`, in
/// the order of the official FASTA file (temperature-major).
#[pyclass(module = "mpnn_rs", frozen, get_all)]
pub struct Designs {
    /// The structure's name.
    pub name: String,
    /// The designed chains' sequences, chains joined by `/` (as in the FASTA file).
    pub sequences: Vec<String>,
    /// Every residue's letter of each design `[n]` strings of length L (model chain order).
    pub full_sequences: Vec<String>,
    /// `[n]` official `score` (designed positions) of each design.
    pub scores: PyObject,
    /// `[n]` official `global_score` (all positions).
    pub global_scores: PyObject,
    /// `[n]` fraction of designed positions that kept the native amino acid.
    pub recovery: PyObject,
    /// `[n, L, 21]` log-probabilities of each design on its own decoding order.
    pub log_probs: PyObject,
    /// `[n, L, 21]` the probabilities each letter was drawn from (0 where not designed).
    pub probs: PyObject,
    /// `[n, L]` decoding order of each design.
    pub decoding_orders: PyObject,
    /// `[n]` temperature of each design.
    pub temperatures: PyObject,
    /// The native sequence's `score` and `global_score`.
    pub native_score: f32,
    pub native_global_score: f32,
    /// The native sequence of the designed chains (chains joined by `/`).
    pub native_sequence: String,
    /// The model's chain order (designed chains first), the order of `L` above.
    pub chain_order: Vec<String>,
}

#[pymethods]
impl Designs {
    fn __repr__(&self) -> String {
        format!("Designs(name={:?}, sequences={})", self.name, self.sequences.len())
    }
    fn __len__(&self) -> usize {
        self.sequences.len()
    }
}

/// One result for one input (`list` false), else the list of results.
pub(crate) fn one_or_list(py: Python<'_>, mut items: Vec<PyObject>, list: bool) -> PyResult<PyObject> {
    if list {
        Ok(PyList::new(py, items)?.into_any().unbind())
    } else {
        Ok(items.remove(0))
    }
}
