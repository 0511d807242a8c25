//! `Structure`: a parsed protein (`mpnn::structure::Protein`), from a file or from arrays.

use std::path::PathBuf;
use std::sync::Arc;

use mpnn::structure::{read_structure, Protein, ProteinArrays};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::{float_array, int_vector, strings};
use crate::err;

/// A protein backbone: chains of residues with N, CA, C, O coordinates and a sequence.
#[pyclass(module = "mpnn_rs", frozen)]
#[derive(Clone)]
pub struct Structure {
    pub(crate) protein: Arc<Protein>,
}

#[pymethods]
impl Structure {
    /// Reads a PDB or mmCIF file (gzip too), or a jsonl holding one parsed structure.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Structure> {
        let protein = py.allow_threads(|| read_structure(&path)).map_err(err)?;
        Ok(Structure { protein: Arc::new(protein) })
    }

    /// Builds a structure from arrays: `coordinates` `[L, 4, 3]` (N, CA, C, O) or `[L, 3]` (CA only).
    #[staticmethod]
    #[pyo3(signature = (coordinates, chains = None, residue_numbers = None, sequence = None, name = "arrays", allow_missing = false))]
    fn from_arrays(
        py: Python<'_>,
        coordinates: &Bound<'_, PyAny>,
        chains: Option<&Bound<'_, PyAny>>,
        residue_numbers: Option<&Bound<'_, PyAny>>,
        sequence: Option<String>,
        name: &str,
        allow_missing: bool,
    ) -> PyResult<Structure> {
        let label = if name.is_empty() { "arrays" } else { name };
        let (data, shape) = float_array(py, coordinates)?;
        let chains = match chains {
            Some(c) => strings(c, &format!("{label}: chains"))?,
            None => vec!["A".to_string()],
        };
        let numbers = residue_numbers.map(|r| int_vector(py, r, &format!("{label}: residue_numbers"))).transpose()?;
        let protein = ProteinArrays::new(name, &data, &shape, &chains)
            .residue_numbers(numbers.as_deref())
            .sequence(sequence.as_deref())
            .allow_missing(allow_missing)
            .build()
            .map_err(err)?;
        Ok(Structure { protein: Arc::new(protein) })
    }

    /// The name outputs are named after (the file stem for files).
    #[getter]
    fn name(&self) -> String {
        self.protein.name.clone()
    }

    /// One-letter sequence over all chains in order (`X` for unknown residues and numbering gaps).
    #[getter]
    fn sequence(&self) -> String {
        self.protein.sequence_x()
    }

    /// Chain ids in order.
    #[getter]
    fn chains(&self) -> Vec<String> {
        self.protein.chain_ids()
    }

    /// The chain id of every residue.
    #[getter]
    fn residue_chains(&self) -> Vec<String> {
        self.protein.residue_chain_ids().into_iter().map(String::from).collect()
    }

    /// `[L, 4, 3]` float64 N, CA, C, O coordinates (NaN for missing atoms and numbering gaps).
    #[getter]
    fn coordinates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let flat: Vec<f64> = self.protein.coordinates().iter().flatten().flatten().copied().collect();
        let arr = PyArray1::from_vec(py, flat);
        Ok(arr.reshape([self.protein.len(), 4, 3])?.into_any())
    }

    fn __len__(&self) -> usize {
        self.protein.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Structure(name={:?}, residues={}, chains=[{}])",
            self.protein.name,
            self.protein.len(),
            self.protein.chain_ids().join(", ")
        )
    }
}

/// One `Structure` or a list (or tuple) of them: the proteins and whether a list was given.
pub(crate) fn structures(value: &Bound<'_, PyAny>) -> PyResult<(Vec<Arc<Protein>>, bool)> {
    if let Ok(s) = value.downcast::<Structure>() {
        return Ok((vec![s.get().protein.clone()], false));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.downcast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.downcast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected a Structure or a list of Structures, got {}",
            value.get_type().name()?
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = item
            .downcast::<Structure>()
            .map_err(|_| pyo3::exceptions::PyTypeError::new_err(format!("item {i} of the list is not a Structure")))?;
        out.push(s.get().protein.clone());
    }
    if out.is_empty() {
        return Err(err("the list of structures is empty; give at least one Structure"));
    }
    Ok((out, true))
}
