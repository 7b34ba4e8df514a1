//! What python/benches/bench_python.py compares the Python calls against:
//! the same Rust calls on the same objects, timed inside Rust (no Python
//! between them), so one run gives the "Python / Rust" ratio.

use std::time::Instant;

use candle_core::Device;
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};
use pyo3::prelude::*;

use crate::arrays;
use crate::denoisers::Denoiser;
use crate::errors::IntoPy;

/// Seconds of each of `repeats` calls of `d.denoise` on the rows of `x`.
#[pyfunction(name = "_time_denoise")]
pub fn time_denoise(
    py: Python<'_>,
    d: &Bound<'_, Denoiser>,
    x: &Bound<'_, PyAny>,
    sigma: f64,
    repeats: usize,
) -> PyResult<Vec<f64>> {
    let d = d.get();
    let x = arrays::tensor(x, "x")?;
    let rows = arrays::rows(&x, d.inner.dim(), "x")?
        .to_dtype(d.dtype)
        .py()?;
    let inner = d.inner.as_ref();
    py.allow_threads(|| {
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                inner.denoise(&rows, sigma)?;
                Ok(start.elapsed().as_secs_f64())
            })
            .collect::<diffusion_regimes::Result<Vec<f64>>>()
    })
    .py()
}

/// Seconds of each of `repeats` runs of Heun on `steps` levels from seeds
/// 0..count, in the denoiser's dtype.
#[pyfunction(name = "_time_sample")]
pub fn time_sample(
    py: Python<'_>,
    d: &Bound<'_, Denoiser>,
    count: u64,
    steps: usize,
    repeats: usize,
) -> PyResult<Vec<f64>> {
    let d = d.get();
    let schedule = Schedule {
        steps,
        ..Schedule::default()
    };
    let plan = Plan::new(&schedule, Method::Heun).py()?;
    let indices: Vec<u64> = (0..count).collect();
    let (inner, dtype) = (d.inner.as_ref(), d.dtype);
    py.allow_threads(|| {
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                generate(inner, &plan, 0, &indices, dtype, &Device::Cpu, None)?;
                Ok(start.elapsed().as_secs_f64())
            })
            .collect::<diffusion_regimes::Result<Vec<f64>>>()
    })
    .py()
}
