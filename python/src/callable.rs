//! Any Python callable `f(x, sigma) -> array` as a denoiser of the crate:
//! a lambda around a torch model samples, and is scored, like any other.

use std::sync::Mutex;

use candle_core::Tensor;
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::{Error, Result};
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::IntoPy;

/// `f` called with x as a float array [B, *shape] (the dtype the sampler
/// runs in) and sigma as a float; it returns D(x; sigma) of the same shape.
pub struct Callable {
    f: Py<PyAny>,
    /// One example's shape: [n] for rows, [C, H, W] for images.
    shape: Vec<usize>,
    /// The exception `f` raised, re-raised once the crate has stopped.
    failure: Mutex<Option<PyErr>>,
}

impl Callable {
    pub fn new(f: Py<PyAny>, shape: Vec<usize>) -> Self {
        Self {
            f,
            shape,
            failure: Mutex::new(None),
        }
    }

    /// The exception `f` raised, if it raised one.
    pub fn take_failure(&self) -> Option<PyErr> {
        self.failure.lock().ok()?.take()
    }

    fn call(&self, x: &Tensor, sigma: f64) -> PyResult<Tensor> {
        Python::with_gil(|py| {
            let mut shape = vec![x.dim(0).py()?];
            shape.extend(&self.shape);
            let input = arrays::array(py, x, &shape)?;
            let output = self.f.bind(py).call1((input, sigma))?;
            let output = py.import("numpy")?.call_method1("asarray", (output,))?;
            let out = arrays::tensor(&output, "the denoiser's output")?;
            if out.dims() != shape.as_slice() {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "the denoiser returned shape {:?} for input of shape {shape:?}",
                    out.dims()
                )));
            }
            out.reshape(x.dims())
                .and_then(|t| t.to_dtype(x.dtype()))
                .py()
        })
    }
}

impl Denoiser for Callable {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        self.call(x, sigma).map_err(|e| {
            let message = Python::with_gil(|py| e.value(py).to_string());
            if let Ok(mut slot) = self.failure.lock() {
                slot.get_or_insert(e);
            }
            Error::invalid("Python denoiser", "its call", message)
        })
    }

    fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// DPS needs (dD/dx)^T v, which a callable returning arrays does not
    /// give (no autodiff graph reaches into it).
    fn vjp(&self, _x: &Tensor, _sigma: f64, _v: &Tensor) -> Result<Tensor> {
        Err(Error::invalid(
            "solver",
            "dps with a Python callable",
            "DPS needs the denoiser's vector-Jacobian product, which a callable does not give; use solver=\"projection\"",
        ))
    }

    fn jacobian_method(&self) -> &'static str {
        "central finite differences (a Python callable)"
    }
}
