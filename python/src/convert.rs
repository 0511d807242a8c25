//! Python values → the library's inputs.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::err;

/// `numpy.ascontiguousarray(value, dtype)`: the data (row-major) and the shape.
pub(crate) fn float_array(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("ascontiguousarray", (value, "float64"))?;
    let arr = arr.downcast::<PyArrayDyn<f64>>()?;
    let ro = arr.readonly();
    let shape = ro.shape().to_vec();
    let data = ro.as_slice().map_err(err)?.to_vec();
    Ok((data, shape))
}

/// A one-dimensional integer array (`what` names the argument in messages).
pub(crate) fn int_vector(py: Python<'_>, value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (value,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        return Err(err(format!("{what}: must be integers (got an array of dtype {})", arr.getattr("dtype")?)));
    }
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(err(format!("{what}: must be one-dimensional (one number per residue); got {ndim} dimensions")));
    }
    let arr = np.call_method1("ascontiguousarray", (arr, "int64"))?;
    let arr = arr.downcast::<PyArrayDyn<i64>>()?;
    let ro = arr.readonly();
    Ok(ro.as_slice().map_err(err)?.to_vec())
}

/// A string, or a sequence of strings.
pub(crate) fn strings(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if let Ok(s) = value.downcast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| err(format!("{what} must be a string or a list of strings")))? {
        let item = item?;
        let s = item.downcast::<PyString>().map_err(|_| {
            err(format!(
                "{what} must be a string or a list of strings (found {})",
                item.repr().map_or("?".into(), |r| r.to_string())
            ))
        })?;
        out.push(s.to_cow()?.into_owned());
    }
    Ok(out)
}

/// `passes=` must be at least 1.
pub(crate) fn check_passes(passes: usize) -> PyResult<()> {
    if passes == 0 {
        return Err(err("passes=0: run at least one pass"));
    }
    Ok(())
}
