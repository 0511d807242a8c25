//! `mpnn_rs._mpnn_rs`: the Python binding of the `mpnn` library. A thin layer: it converts
//! Python values to the library's types and back; every check, featurization, sampler and
//! random number is the library's (`mpnn::job`), so results equal the command line's.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod convert;
mod ligand;
mod model;
mod results;
mod structure;

create_exception!(
    mpnn_rs,
    MpnnError,
    PyValueError,
    "An error of the mpnn library: a bad structure, option or checkpoint. The message names the item and the fix."
);

/// Converts any library error into [`MpnnError`] carrying its message.
pub(crate) fn err(e: impl std::fmt::Display) -> PyErr {
    MpnnError::new_err(e.to_string())
}

#[pymodule]
fn _mpnn_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MpnnError", m.py().get_type::<MpnnError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<structure::Structure>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<ligand::LigandModel>()?;
    m.add_class::<results::Scores>()?;
    m.add_class::<results::Designs>()?;
    Ok(())
}
