//! The scores of THEORY §7 on arrays (raw samples or features from
//! anywhere), computed as `regimes score` computes them on files: in
//! float64, with the same bootstrap. Scores come back as JSON text, which
//! the Python layer reads into `Score` objects.

use candle_core::{DType, Tensor};
use diffusion_regimes::error::parse_variant;
use diffusion_regimes::metrics::{
    self, effective_rank, singular_values, Bootstrap, Similarity, DEFAULT_CHUNK,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::IntoPy;
use crate::interrupt;
use crate::sampling::as_denoiser;

/// `x` [M, ...] as float64 rows [M, d].
fn rows64(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let t = arrays::tensor(x, what)?;
    if t.rank() < 2 {
        return Err(PyValueError::new_err(format!(
            "{what}: expected rows [M, d] (or [M, ...]), got shape {:?}",
            t.dims()
        )));
    }
    t.flatten_from(1).and_then(|t| t.to_dtype(DType::F64)).py()
}

fn json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn similarity(name: &str, threshold: f64) -> PyResult<Similarity> {
    if !threshold.is_finite() {
        return Err(PyValueError::new_err(format!(
            "threshold = {threshold}: must be finite"
        )));
    }
    parse_variant(name).map_err(|e| PyValueError::new_err(format!("similarity {e}")))
}

/// RP of `a` and `b`, paired row by row (same noise), with its interval.
#[pyfunction]
#[pyo3(signature = (a, b, similarity="cosine", threshold=0.8, resamples=1000, seed=0, features="arrays"))]
#[allow(clippy::too_many_arguments)]
pub fn reproducibility(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    similarity: &str,
    threshold: f64,
    resamples: usize,
    seed: u64,
    features: &str,
) -> PyResult<String> {
    let (a, b) = (rows64(a, "a")?, rows64(b, "b")?);
    let s = self::similarity(similarity, threshold)?;
    let boot = Bootstrap { resamples, seed };
    let score = py
        .allow_threads(|| metrics::reproducibility(&a, &b, s, threshold, features, boot))
        .py()?;
    json(&score)
}

/// GL of `samples` against `train` (best similarity <= threshold) and the
/// memorization 1 - GL.
#[pyfunction]
#[pyo3(signature = (samples, train, similarity="cosine", threshold=0.8, resamples=1000, seed=0, features="arrays"))]
#[allow(clippy::too_many_arguments)]
pub fn generalization(
    py: Python<'_>,
    samples: &Bound<'_, PyAny>,
    train: &Bound<'_, PyAny>,
    similarity: &str,
    threshold: f64,
    resamples: usize,
    seed: u64,
    features: &str,
) -> PyResult<String> {
    let (x, y) = paired_sets(samples, train)?;
    let s = self::similarity(similarity, threshold)?;
    let boot = Bootstrap { resamples, seed };
    let scores = py
        .allow_threads(|| metrics::generalization(&x, &y, s, threshold, features, boot))
        .py()?;
    json(&scores)
}

/// The fraction of samples whose nearest training point is under a third
/// of the distance to the second nearest.
#[pyfunction]
#[pyo3(signature = (samples, train, resamples=1000, seed=0, features="arrays"))]
pub fn memorization_ratio(
    py: Python<'_>,
    samples: &Bound<'_, PyAny>,
    train: &Bound<'_, PyAny>,
    resamples: usize,
    seed: u64,
    features: &str,
) -> PyResult<String> {
    let (x, y) = paired_sets(samples, train)?;
    let boot = Bootstrap { resamples, seed };
    let score = py
        .allow_threads(|| metrics::ratio_memorization(&x, &y, features, boot))
        .py()?;
    json(&score)
}

/// Samples and training rows of one width.
fn paired_sets(samples: &Bound<'_, PyAny>, train: &Bound<'_, PyAny>) -> PyResult<(Tensor, Tensor)> {
    let (x, y) = (rows64(samples, "samples")?, rows64(train, "train")?);
    if x.dim(1).py()? != y.dim(1).py()? {
        return Err(PyValueError::new_err(format!(
            "samples have {} values per row but train has {}",
            x.dim(1).py()?,
            y.dim(1).py()?
        )));
    }
    Ok((x, y))
}

/// Indices and distances of the two nearest training rows, per sample.
type NearestTwo = (Vec<[usize; 2]>, Vec<[f64; 2]>);

/// The two nearest training rows of every sample (exact, Euclidean):
/// indices and distances, each [M, 2].
#[pyfunction]
pub fn nearest(
    py: Python<'_>,
    samples: &Bound<'_, PyAny>,
    train: &Bound<'_, PyAny>,
) -> PyResult<NearestTwo> {
    let (x, y) = paired_sets(samples, train)?;
    if y.dim(0).py()? < 2 {
        return Err(PyValueError::new_err("train: needs at least 2 rows"));
    }
    let n = py
        .allow_threads(|| metrics::nearest_two(&x, &y, DEFAULT_CHUNK))
        .py()?;
    let indices = n.nearest.iter().zip(&n.second).map(|(&a, &b)| [a, b]);
    let distances = n
        .nearest_distance
        .iter()
        .zip(&n.second_distance)
        .map(|(&a, &b)| [a, b]);
    Ok((indices.collect(), distances.collect()))
}

/// gap(sigma) = E|D(x) - D_ref(x)|^2 / E|D_ref(x)|^2 over x = y + sigma z
/// for each sigma, y the rows of `points`, z the crate's noise of `seed`.
/// Either denoiser may be a callable f(x, sigma).
#[pyfunction]
#[pyo3(signature = (denoiser, reference, sigmas, points, seed=0))]
pub fn denoiser_gap(
    py: Python<'_>,
    denoiser: &Bound<'_, PyAny>,
    reference: &Bound<'_, PyAny>,
    sigmas: Vec<f64>,
    points: &Bound<'_, PyAny>,
    seed: u64,
) -> PyResult<Vec<f64>> {
    let y = arrays::tensor(points, "points")?;
    let shape = y.dims()[1..].to_vec();
    let dtype = Some(if y.dtype() == DType::F64 {
        "float64"
    } else {
        "float32"
    });
    let a = as_denoiser(denoiser, Some(shape.clone()), dtype, None)?;
    let b = as_denoiser(reference, Some(shape), dtype, None)?;
    let (a, b) = (a.get(), b.get());
    let y = arrays::rows(&y, a.inner.dim(), "points")?;
    let (da, db) = (a.inner.as_ref(), b.inner.as_ref());
    interrupt::run(py, || metrics::denoiser_gap(da, db, &y, &sigmas, seed))
        .map_err(|e| a.failure_or(b.failure_or(e)))
}

/// The effective rank (the fewest singular values holding `fraction` of
/// the squared sum) of dD/dx at each row of `x`, with the singular values.
#[pyfunction]
#[pyo3(signature = (denoiser, x, sigma, fraction=0.99))]
pub fn jacobian_rank(
    py: Python<'_>,
    denoiser: &Bound<'_, PyAny>,
    x: &Bound<'_, PyAny>,
    sigma: f64,
    fraction: f64,
) -> PyResult<Vec<(usize, Vec<f64>)>> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(PyValueError::new_err(format!(
            "fraction = {fraction}: must lie in (0, 1]"
        )));
    }
    diffusion_regimes::error::check_sigma(sigma).py()?;
    let x = arrays::tensor(x, "x")?;
    let d = as_denoiser(
        denoiser,
        Some(x.dims()[1..].to_vec()),
        Some("float64"),
        None,
    )?;
    let d = d.get();
    let rows = arrays::rows(&x, d.inner.dim(), "x")?
        .to_dtype(d.dtype)
        .py()?;
    let inner = d.inner.as_ref();
    let j = interrupt::run(py, || inner.jacobian(&rows, sigma)).map_err(|e| d.failure_or(e))?;
    (0..j.dim(0).py()?)
        .map(|row| {
            let s = singular_values(&j.get(row).py()?).py()?;
            Ok((effective_rank(&s, fraction), s))
        })
        .collect()
}
