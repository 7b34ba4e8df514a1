//! Data: synthetic distributions that carry their exact denoiser, the
//! image loaders, and nested / disjoint training subsets.

use std::path::PathBuf;

use candle_core::DType;
use diffusion_regimes::data::{ImageImport, Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::{Denoiser as _, Mixture};
use diffusion_regimes::error::parse_variant;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::IntoPy;

/// A synthetic distribution (THEORY §6): its spec and seed determine it,
/// and it knows its exact denoiser.
#[pyclass(module = "diffusion_regimes", frozen)]
pub struct Distribution {
    synthetic: Synthetic,
}

impl Distribution {
    pub fn mixture(&self) -> Mixture {
        self.synthetic.mixture.clone()
    }
}

#[pymethods]
impl Distribution {
    /// Rows start..start + count of its data set, float64 [count, n]; row i
    /// depends only on (seed, i), so a smaller set is a prefix of a larger.
    #[pyo3(signature = (count, start=0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        start: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = self.synthetic.sample_rows(start, count).py()?;
        arrays::array(py, &rows, rows.dims())
    }

    /// `count` fresh draws that no training set holds.
    fn fresh<'py>(&self, py: Python<'py>, count: usize) -> PyResult<Bound<'py, PyAny>> {
        let rows = self.synthetic.sample_fresh(count).py()?;
        arrays::array(py, &rows, rows.dims())
    }

    /// The component (class) of rows start..start + count.
    #[pyo3(signature = (count, start=0))]
    fn labels(&self, count: usize, start: usize) -> Vec<u32> {
        self.synthetic.labels(start, count)
    }

    /// Saves it as `regimes data` does (spec, parameters), into `dir`.
    fn save(&self, dir: PathBuf) -> PyResult<()> {
        self.synthetic.save(&dir).py()
    }

    /// The data dimension n.
    #[getter]
    fn dim(&self) -> usize {
        self.synthetic.mixture.dim()
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.synthetic.seed
    }

    /// The spec as JSON text (the Python layer reads it into a dict).
    #[getter]
    fn spec_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.synthetic.spec)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Distribution({}, seed={})",
            serde_json::to_string(&self.synthetic.spec).unwrap_or_default(),
            self.synthetic.seed
        )
    }
}

/// The distribution of `spec` (JSON of the crate's SyntheticSpec) and `seed`.
#[pyfunction]
pub fn synthetic(spec: &str, seed: u64) -> PyResult<Distribution> {
    let spec: SyntheticSpec = serde_json::from_str(spec)
        .map_err(|e| PyValueError::new_err(format!("distribution spec: {e}")))?;
    Ok(Distribution {
        synthetic: Synthetic::new(spec, seed).py()?,
    })
}

/// The distribution saved in `dir` by `regimes data` or `Distribution.save`.
#[pyfunction]
pub fn load_distribution(dir: PathBuf) -> PyResult<Distribution> {
    Ok(Distribution {
        synthetic: Synthetic::load(&dir).py()?,
    })
}

/// Images [N, C, H, W] float32 in [-1, 1] and their labels (or None), read
/// as `regimes data import` reads them.
#[pyfunction]
#[pyo3(signature = (path, format, size=None, grayscale=false, limit=None, array=None, labels=None))]
#[allow(clippy::too_many_arguments)]
pub fn load_images<'py>(
    py: Python<'py>,
    path: PathBuf,
    format: &str,
    size: Option<[usize; 2]>,
    grayscale: bool,
    limit: Option<usize>,
    array: Option<String>,
    labels: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyAny>, Option<Vec<u32>>)> {
    let import = ImageImport {
        format: parse_variant(format).py()?,
        size,
        grayscale,
        limit,
        array,
        labels,
    };
    let images = py.allow_threads(|| import.read(&path)).py()?;
    let pixels = images.pixels.to_dtype(DType::F32).py()?;
    Ok((arrays::array(py, &pixels, pixels.dims())?, images.labels))
}

/// The indices of the training set of size `n` out of `total` examples:
/// the first `n` of one seeded permutation, so sets of growing n are nested.
#[pyfunction]
pub fn nested_subset(total: usize, n: usize, seed: u64) -> PyResult<Vec<usize>> {
    diffusion_regimes::data::nested_subset(total, n, seed).py()
}

/// The indices of part `part` of disjoint training sets of size `n`.
#[pyfunction]
pub fn disjoint_subset(total: usize, n: usize, part: usize, seed: u64) -> PyResult<Vec<usize>> {
    diffusion_regimes::data::disjoint_subset(total, n, part, seed).py()
}
