//! numpy arrays in and out: float32 and float64 kept as they are, any
//! memory order or strides accepted and copied once, NaN refused.

use candle_core::{DType, Device, Tensor};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::IntoPy;

/// The float numpy array `x` as a tensor of its dtype and shape; `what`
/// names it in errors.
pub fn tensor(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    if let Ok(a) = x.downcast::<PyArrayDyn<f64>>() {
        let a = a.readonly();
        from_values(copied(a.as_array()), a.shape(), what)
    } else if let Ok(a) = x.downcast::<PyArrayDyn<f32>>() {
        let a = a.readonly();
        from_values(copied(a.as_array()), a.shape(), what)
    } else if let Ok(a) = x.downcast::<PyUntypedArray>() {
        Err(PyValueError::new_err(format!(
            "{what}: expected a float32 or float64 array, got dtype {}",
            a.dtype()
        )))
    } else {
        Err(PyValueError::new_err(format!(
            "{what}: expected a numpy array, got {}",
            x.get_type().name()?
        )))
    }
}

/// The values in C order: one copy, a memcpy when they already are.
fn copied<T: Copy>(view: numpy::ndarray::ArrayViewD<'_, T>) -> Vec<T> {
    match view.as_slice() {
        Some(values) => values.to_vec(),
        None => view.iter().copied().collect(),
    }
}

/// A finite tensor of these values and this shape.
fn from_values<T>(values: Vec<T>, shape: &[usize], what: &str) -> PyResult<Tensor>
where
    T: candle_core::WithDType + Into<f64> + Copy,
{
    if !values.iter().all(|v| (*v).into().is_finite()) {
        let i = values.iter().position(|v| !(*v).into().is_finite());
        return Err(PyValueError::new_err(format!(
            "{what}: holds a non-finite value (NaN or inf) at flat index {}",
            i.unwrap_or_default()
        )));
    }
    Tensor::from_vec(values, shape, &Device::Cpu).py()
}

/// `x` as rows [B, n]: a batch [B, ...] flattened, or one point of `n`
/// values (any shape) as one row. The error names `what` and `n`.
pub fn rows(x: &Tensor, n: usize, what: &str) -> PyResult<Tensor> {
    let dims = x.dims();
    let batch = match dims {
        [b, ..] if x.rank() >= 2 && x.elem_count() == b * n => *b,
        _ if x.elem_count() == n => 1,
        _ => {
            return Err(PyValueError::new_err(format!(
                "{what}: expected a batch [B, {n}] or [B, ...] of {n} values per row, got shape {dims:?}"
            )))
        }
    };
    x.reshape((batch, n)).py()
}

/// The tensor `t` as a numpy array of shape `shape` in its own dtype
/// (float64 or float32; anything else as float32).
pub fn array<'py>(py: Python<'py>, t: &Tensor, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let flat = t.flatten_all().py()?;
    Ok(match t.dtype() {
        DType::F64 => {
            let values = flat.to_vec1::<f64>().py()?;
            PyArray1::from_vec(py, values).reshape(shape)?.into_any()
        }
        _ => {
            let values = flat.to_dtype(DType::F32).py()?.to_vec1::<f32>().py()?;
            PyArray1::from_vec(py, values).reshape(shape)?.into_any()
        }
    })
}

/// The dtype called `name` (float32 or float64, numpy's spelling).
pub fn dtype(name: &str) -> PyResult<DType> {
    match name {
        "float32" | "f32" => Ok(DType::F32),
        "float64" | "f64" => Ok(DType::F64),
        other => Err(PyValueError::new_err(format!(
            "dtype = {other}: use float32 or float64"
        ))),
    }
}
