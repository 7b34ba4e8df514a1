//! The crate's per-sample noise and its samplers, for any denoiser.

use std::sync::Mutex;

use candle_core::Device;
use diffusion_regimes::framework::Framework;
use diffusion_regimes::sample::{
    generate, generate_from, initial_noise as noise_of, Method, Plan, Schedule, Step,
};
use diffusion_regimes::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays;
use crate::denoisers::{dtype_name, Denoiser};
use crate::errors::IntoPy;
use crate::interrupt;

/// z_j for j in `indices` of run `seed`, [len(indices), *shape]: the noise
/// `regimes sample --seed S --seeds ...` starts from (sample j starts at
/// sigma_max z_j), row j depending only on (seed, j).
#[pyfunction]
#[pyo3(signature = (seed, indices, shape, dtype="float32"))]
pub fn initial_noise<'py>(
    py: Python<'py>,
    seed: u64,
    indices: Vec<u64>,
    shape: Vec<usize>,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dim = shape.iter().product();
    let dtype = arrays::dtype(dtype)?;
    let (z, _) = noise_of(seed, &indices, dim, dtype, &Device::Cpu).py()?;
    let mut dims = vec![indices.len()];
    dims.extend(shape);
    arrays::array(py, &z, &dims)
}

/// The names `sampler=` takes: every registered sampler, then "native".
#[pyfunction]
pub fn samplers() -> Vec<&'static str> {
    let mut names = Method::NAMES.to_vec();
    names.push("native");
    names
}

/// The names `framework=` takes.
#[pyfunction]
pub fn frameworks() -> Vec<&'static str> {
    Framework::ALL.map(Framework::name).to_vec()
}

/// Samples `denoiser` (a crate Denoiser, or a callable f(x, sigma) on
/// examples of `shape`) from the crate's noise of `seed` at `seeds`, or from
/// the standard-normal `noise` [B, *shape] given (its stochastic samplers'
/// later noise still comes from `seed`). The plan is `sampler` on the EDM
/// schedule, or, with "native", the framework's own sampler on `steps`
/// levels. `observer(index, sigma, x, denoised)` sees every step; an
/// exception it raises stops sampling and is raised here.
#[pyfunction]
#[pyo3(signature = (
    denoiser, seeds=None, noise=None, seed=0, shape=None, dtype=None, sampler="heun",
    steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0, framework=None, observer=None
))]
#[allow(clippy::too_many_arguments)]
pub fn sample<'py>(
    py: Python<'py>,
    denoiser: &Bound<'py, PyAny>,
    seeds: Option<Vec<u64>>,
    noise: Option<&Bound<'py, PyAny>>,
    seed: u64,
    shape: Option<Vec<usize>>,
    dtype: Option<&str>,
    sampler: &str,
    steps: usize,
    sigma_min: f64,
    sigma_max: f64,
    rho: f64,
    framework: Option<&str>,
    observer: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let noise = noise.map(|z| arrays::tensor(z, "noise")).transpose()?;
    let d = as_denoiser(denoiser, shape, dtype, noise.as_ref())?;
    let d = d.get();
    let dtype = match dtype {
        Some(name) => arrays::dtype(name)?,
        None => d.dtype,
    };
    let plan = match sampler {
        "native" => {
            let framework = match (framework, d.framework) {
                (Some(given), _) => given.parse::<Framework>().py()?,
                (None, Some(own)) => own,
                (None, None) => {
                    return Err(PyValueError::new_err(format!(
                        "sampler = native needs framework= (one of {}) for a denoiser that was not trained",
                        frameworks().join(", ")
                    )))
                }
            };
            framework.native(steps).py()?
        }
        name => {
            let schedule = schedule(steps, sigma_min, sigma_max, rho)?;
            Plan::new(&schedule, name.parse::<Method>().py()?).py()?
        }
    };
    let indices: Vec<u64> = match (&seeds, &noise) {
        (Some(seeds), None) => seeds.clone(),
        (None, Some(z)) => (0..z.dim(0).py()? as u64).collect(),
        _ => {
            return Err(PyValueError::new_err(
                "give exactly one of seeds= (sample indices) and noise= (an array [B, ...])",
            ))
        }
    };
    let n = d.inner.dim();
    let given = noise
        .map(|z| arrays::rows(&z, n, "noise").and_then(|z| z.to_dtype(dtype).py()))
        .transpose()?;
    let inner = d.inner.as_ref();
    let failed: Mutex<Option<PyErr>> = Mutex::new(None);
    let mut watch = |step: &Step<'_>| -> diffusion_regimes::Result<()> {
        let Some(f) = &observer else { return Ok(()) };
        let shape = step_shape(step.x.dim(0)?, &d.shape);
        Python::with_gil(|py| {
            let x = arrays::array(py, step.x, &shape)?;
            let denoised = arrays::array(py, step.denoised, &shape)?;
            f.bind(py)
                .call1((step.index, step.sigma, x, denoised))
                .map(drop)
        })
        .map_err(|e| {
            let message = e.to_string();
            if let Ok(mut slot) = failed.lock() {
                slot.get_or_insert(e);
            }
            Error::invalid("observer", "its call", message)
        })
    };
    let samples = interrupt::run(py, || match &given {
        None => generate(
            inner,
            &plan,
            seed,
            &indices,
            dtype,
            &Device::Cpu,
            Some(&mut watch),
        ),
        Some(z) => {
            let (_, mut streams) = noise_of(seed, &indices, n, dtype, &Device::Cpu)?;
            generate_from(inner, &plan, z, &mut streams, Some(&mut watch))
        }
    });
    let samples = samples.map_err(|e| match failed.lock().ok().and_then(|mut s| s.take()) {
        Some(observer_error) => observer_error,
        None => d.failure_or(e),
    })?;
    arrays::array(py, &samples, &step_shape(indices.len(), &d.shape))
}

/// The EDM schedule of these parameters, checked.
pub fn schedule(steps: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> PyResult<Schedule> {
    let schedule = Schedule {
        steps,
        sigma_min,
        sigma_max,
        rho,
    };
    schedule.validate().py()?;
    Ok(schedule)
}

/// [B, *shape].
fn step_shape(batch: usize, shape: &[usize]) -> Vec<usize> {
    let mut dims = vec![batch];
    dims.extend(shape);
    dims
}

/// `object` as a Denoiser: itself, or a callable wrapped with `shape`
/// (or the noise's) and `dtype` (or the noise's, or float32).
pub fn as_denoiser<'py>(
    object: &Bound<'py, PyAny>,
    shape: Option<Vec<usize>>,
    dtype: Option<&str>,
    noise: Option<&candle_core::Tensor>,
) -> PyResult<Bound<'py, Denoiser>> {
    if let Ok(d) = object.downcast::<Denoiser>() {
        return Ok(d.clone());
    }
    if !object.is_callable() {
        return Err(PyValueError::new_err(format!(
            "denoiser: expected a diffusion_regimes.Denoiser or a callable f(x, sigma), got {}",
            object.get_type().name()?
        )));
    }
    let shape = match (shape, noise) {
        (Some(shape), _) => shape,
        (None, Some(z)) => z.dims()[1..].to_vec(),
        (None, None) => {
            return Err(PyValueError::new_err(
                "a callable denoiser needs shape= (one example's shape), or noise=",
            ))
        }
    };
    let dtype = match (dtype, noise) {
        (Some(name), _) => arrays::dtype(name)?,
        (None, Some(z)) => z.dtype(),
        (None, None) => arrays::dtype(dtype_name(candle_core::DType::F32))?,
    };
    Bound::new(
        object.py(),
        Denoiser::from_callable(object.clone().unbind(), shape, dtype),
    )
}
