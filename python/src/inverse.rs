//! Inverse problems and the patch-size calibration from Python, on any
//! denoiser (a crate Denoiser or a callable f(x, sigma)).

use candle_core::Device;
use diffusion_regimes::denoise::PatchKind;
use diffusion_regimes::error::parse_variant;
use diffusion_regimes::experiments::calibrate_patches as calibrate;
use diffusion_regimes::inverse::{solve as solve_with, Operator, OperatorSpec, Problems, Solver};
use diffusion_regimes::metrics::Similarity;
use diffusion_regimes::sample::{starting_points, Method, Schedule};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::IntoPy;
use crate::interrupt;
use crate::sampling::{as_denoiser, schedule};

/// Measures `clean` [K, ...] with `operator` (as `regimes solve --operator`
/// spells it) and reconstructs each measurement from every noise of
/// `seeds` by `solver` ("dps" with `zeta`, or "projection"), Euler on the
/// EDM schedule: (reconstructions [K S, ...], measurements [K, m]); row
/// k S + j is clean row k from noise z_j, as in `regimes solve`.
#[pyfunction]
#[pyo3(signature = (
    denoiser, clean, operator, solver="dps", zeta=10.0, noise_y=0.0, seeds=None, seed=0,
    steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0
))]
#[allow(clippy::too_many_arguments)]
pub fn solve<'py>(
    py: Python<'py>,
    denoiser: &Bound<'py, PyAny>,
    clean: &Bound<'py, PyAny>,
    operator: &str,
    solver: &str,
    zeta: f64,
    noise_y: f64,
    seeds: Option<Vec<u64>>,
    seed: u64,
    steps: usize,
    sigma_min: f64,
    sigma_max: f64,
    rho: f64,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let clean = arrays::tensor(clean, "clean")?;
    let (count, shape) = match clean.dims() {
        [k, rest @ ..] if !rest.is_empty() && *k > 0 => (*k, rest.to_vec()),
        dims => {
            return Err(PyValueError::new_err(format!(
                "clean: expected rows [K, n] or images [K, C, H, W], got shape {dims:?}"
            )))
        }
    };
    let dtype = if clean.dtype() == candle_core::DType::F64 {
        "float64"
    } else {
        "float32"
    };
    let d = as_denoiser(denoiser, Some(shape.clone()), Some(dtype), None)?;
    let d = d.get();
    let spec = operator.parse::<OperatorSpec>().py()?;
    let a = Operator::new(&spec, &shape).py()?;
    let solver = match solver.parse::<Solver>().py()? {
        Solver::Dps { .. } => Solver::Dps { zeta },
        other => other,
    };
    let sigmas = schedule(steps, sigma_min, sigma_max, rho)?.sigmas().py()?;
    let indices = seeds.unwrap_or_else(|| (0..8).collect());
    let clean = clean
        .reshape((count, a.dim()))
        .and_then(|c| c.to_dtype(d.dtype))
        .py()?;
    let problems = Problems::new(&a, &clean, noise_y, seed, &indices, sigma_max).py()?;
    let inner = d.inner.as_ref();
    let x = interrupt::run(py, || {
        solve_with(inner, &a, &problems.y, solver, &problems.x, &sigmas)
    })
    .map_err(|e| d.failure_or(e))?;
    let mut dims = vec![count * indices.len()];
    dims.extend(&shape);
    let measurements = &problems.measurements;
    Ok((
        arrays::array(py, &x, &dims)?,
        arrays::array(py, measurements, measurements.dims())?,
    ))
}

/// Along `model`'s own trajectories from `seeds` (`sampler` heun, euler or
/// ddim on the EDM schedule), the patch size of `kind` (local, els,
/// els-boundary, window-mean) over `images` [N, C, H, W] whose score is most
/// like the model's at each step: [(sigma, k, mean similarity per size)].
#[pyfunction]
#[pyo3(signature = (model, kind, images, sizes, seeds=None, seed=0, steps=18, sampler="heun", similarity="cosine"))]
#[allow(clippy::too_many_arguments)]
pub fn calibrate_patches(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    kind: &str,
    images: &Bound<'_, PyAny>,
    sizes: Vec<usize>,
    seeds: Option<Vec<u64>>,
    seed: u64,
    steps: usize,
    sampler: &str,
    similarity: &str,
) -> PyResult<Vec<(f64, usize, Vec<f64>)>> {
    let images = arrays::tensor(images, "images")?;
    if images.rank() != 4 {
        return Err(PyValueError::new_err(format!(
            "images: expected [N, C, H, W], got shape {:?}",
            images.dims()
        )));
    }
    let kind: PatchKind = parse_variant(kind).py()?;
    let similarity: Similarity = parse_variant(similarity).py()?;
    let method: Method = match sampler {
        "heun" | "euler" | "ddim" => sampler.parse::<Method>().py()?,
        other => {
            return Err(PyValueError::new_err(format!(
                "sampler = {other}: use heun, euler or ddim"
            )))
        }
    };
    let dtype = if images.dtype() == candle_core::DType::F64 {
        "float64"
    } else {
        "float32"
    };
    let d = as_denoiser(model, Some(images.dims()[1..].to_vec()), Some(dtype), None)?;
    let d = d.get();
    let defaults = Schedule::default();
    let sigmas = schedule(steps, defaults.sigma_min, defaults.sigma_max, defaults.rho)?
        .sigmas()
        .py()?;
    let indices = seeds.unwrap_or_else(|| (0..8).collect());
    let dim = d.inner.dim();
    let (start, _) = starting_points(seed, &indices, dim, sigmas[0], d.dtype, &Device::Cpu).py()?;
    let train = images.to_dtype(d.dtype).py()?;
    let inner = d.inner.as_ref();
    let calibration = interrupt::run(py, || {
        calibrate(
            inner,
            kind,
            &train,
            &sizes,
            (&start, &sigmas),
            &method,
            similarity,
        )
    })
    .map_err(|e| d.failure_or(e))?;
    Ok(calibration
        .steps
        .into_iter()
        .map(|s| (s.sigma, s.k, s.scores))
        .collect())
}
