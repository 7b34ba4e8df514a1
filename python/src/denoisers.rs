//! `denoiser(...)`: every kind of the crate's registry, built from arrays,
//! distributions, run folders or a spec string, as one Python class.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use diffusion_regimes::denoise::conditional::Guided;
use diffusion_regimes::denoise::Denoiser as _;
use diffusion_regimes::framework::Framework;
use diffusion_regimes::nn::checkpoint::read_state;
use diffusion_regimes::spec::{
    class_denoiser_from, DenoiserKind, DenoiserSpec, Input, Source, DENOISERS,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays;
use crate::callable::Callable;
use crate::data::Distribution;
use crate::errors::IntoPy;

/// A denoiser D(x; sigma) of the crate, or a Python callable wrapped as one.
#[pyclass(module = "diffusion_regimes", frozen)]
pub struct Denoiser {
    pub inner: Arc<dyn diffusion_regimes::denoise::Denoiser>,
    /// One example's shape: [n], or [C, H, W].
    pub shape: Vec<usize>,
    /// The dtype it computes in; inputs are converted to it and results
    /// back to the input's dtype.
    pub dtype: DType,
    pub kind: String,
    /// Set when `inner` is a Python callable, whose exceptions are re-raised.
    pub callable: Option<Arc<Callable>>,
    /// A trained model's framework, whose native sampler `sampler="native"` runs.
    pub framework: Option<Framework>,
}

impl Denoiser {
    fn new(
        inner: Box<dyn diffusion_regimes::denoise::Denoiser>,
        shape: Vec<usize>,
        dtype: DType,
        kind: &str,
    ) -> Self {
        Self {
            inner: Arc::from(inner),
            shape,
            dtype,
            kind: kind.to_string(),
            callable: None,
            framework: None,
        }
    }

    /// A Python callable f(x, sigma) on examples of `shape`, computing in `dtype`.
    pub fn from_callable(f: Py<PyAny>, shape: Vec<usize>, dtype: DType) -> Self {
        let callable = Arc::new(Callable::new(f, shape.clone()));
        Self {
            inner: callable.clone(),
            shape,
            dtype,
            kind: "callable".into(),
            callable: Some(callable),
            framework: None,
        }
    }

    /// The callable's own exception instead of `error`, when it raised one.
    pub fn failure_or(&self, error: PyErr) -> PyErr {
        self.callable
            .as_ref()
            .and_then(|c| c.take_failure())
            .unwrap_or(error)
    }

    fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// `f(rows, sigma)` on `x` as rows in this denoiser's dtype, the result
    /// in `x`'s dtype and, with `shape_of`, reshaped.
    fn apply(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        sigma: f64,
        f: impl FnOnce(
                &dyn diffusion_regimes::denoise::Denoiser,
                &Tensor,
            ) -> diffusion_regimes::Result<Tensor>
            + Send,
    ) -> PyResult<(Tensor, Vec<usize>, DType)> {
        diffusion_regimes::error::check_sigma(sigma).py()?;
        let x = arrays::tensor(x, "x")?;
        let rows = arrays::rows(&x, self.dim(), "x")?
            .to_dtype(self.dtype)
            .py()?;
        let inner = self.inner.as_ref();
        let out = py
            .allow_threads(|| f(inner, &rows))
            .py()
            .map_err(|e| self.failure_or(e))?;
        Ok((out, x.dims().to_vec(), x.dtype()))
    }
}

#[pymethods]
impl Denoiser {
    /// D(x; sigma) for a batch x [B, ...] (or one point), in x's shape and dtype.
    fn denoise<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (out, shape, dtype) = self.apply(py, x, sigma, |d, x| d.denoise(x, sigma))?;
        arrays::array(py, &out.to_dtype(dtype).py()?, &shape)
    }

    /// The score (D(x; sigma) - x) / sigma^2 (Tweedie, THEORY §1), in x's shape and dtype.
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (out, shape, dtype) = self.apply(py, x, sigma, |d, x| d.score(x, sigma))?;
        arrays::array(py, &out.to_dtype(dtype).py()?, &shape)
    }

    /// The Jacobian dD/dx [n, n] at one point x (or [B, n, n] for a batch),
    /// entry (i, j) = dD_i/dx_j: closed form or autodiff where the
    /// denoiser has one, central differences otherwise.
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = self.dim();
        let (j, shape, dtype) = self.apply(py, x, sigma, |d, x| d.jacobian(x, sigma))?;
        let batch = j.dim(0).py()?;
        let one_point = shape.iter().product::<usize>() == n && shape.len() != 2;
        let dims = match one_point {
            true => vec![n, n],
            false => vec![batch, n, n],
        };
        arrays::array(py, &j.to_dtype(dtype).py()?, &dims)
    }

    /// D(x; sigma), so a crate denoiser is itself a callable `f(x, sigma)`.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.denoise(py, x, sigma)
    }

    /// The data dimension n.
    #[getter(dim)]
    fn py_dim(&self) -> usize {
        self.dim()
    }

    /// One example's shape: (n,) for rows, (C, H, W) for images.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    /// The dtype it computes in, "float32" or "float64".
    #[getter(dtype)]
    fn py_dtype(&self) -> &'static str {
        dtype_name(self.dtype)
    }

    #[getter]
    fn kind(&self) -> String {
        self.kind.clone()
    }

    /// A trained model's framework (None for the others).
    #[getter]
    fn framework(&self) -> Option<&'static str> {
        self.framework.map(Framework::name)
    }

    /// How `jacobian` is computed.
    #[getter]
    fn jacobian_method(&self) -> &'static str {
        self.inner.jacobian_method()
    }

    fn __repr__(&self) -> String {
        format!(
            "Denoiser(kind={:?}, shape={:?}, dtype={})",
            self.kind,
            self.shape,
            dtype_name(self.dtype)
        )
    }
}

pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// What the Python call gave a kind to build from.
enum Given<'py> {
    Array(Tensor),
    Distribution(Bound<'py, Distribution>),
    Path(PathBuf),
}

/// Builds the denoiser `kind` (a registry name, or a whole spec
/// `kind:path[:param]`) from `source`: training examples (an array [N, n]
/// or images [N, C, H, W], computing in its dtype), a synthetic
/// distribution, or a path (a training file, a distribution folder, a run
/// folder). With `class_`, its class-conditional form (`labels` for the
/// empirical kind); with `guidance` as well, classifier-free guidance.
#[pyfunction]
#[pyo3(signature = (kind, source=None, param=None, dtype=None, labels=None, class_=None, guidance=0.0))]
#[allow(clippy::too_many_arguments)]
pub fn denoiser(
    kind: &str,
    source: Option<&Bound<'_, PyAny>>,
    param: Option<String>,
    dtype: Option<&str>,
    labels: Option<Vec<u32>>,
    class_: Option<u32>,
    guidance: f64,
) -> PyResult<Denoiser> {
    let file_dtype = arrays::dtype(dtype.unwrap_or("float32"))?;
    let (kind, given, param) = match kind.split_once(':') {
        Some(_) => {
            let spec = kind.parse::<DenoiserSpec>().py()?;
            let given = Given::Path(spec.path().to_path_buf());
            (spec.kind(), given, spec.param().map(str::to_string))
        }
        None => {
            let kind = DenoiserKind::named(kind).py()?;
            let source = source.ok_or_else(|| {
                PyValueError::new_err(format!(
                    "denoiser {:?} needs what it is built from",
                    kind.name
                ))
            })?;
            (kind, given_of(source)?, param)
        }
    };
    let param = param.unwrap_or_default();
    let (input, shape, dtype) = resolve(kind, &given, file_dtype)?;
    let dtype = dtype.unwrap_or(file_dtype);
    let device = Device::Cpu;
    let built = match class_ {
        None => kind.build_from(input, &param, dtype, &device).py()?,
        Some(class) => {
            let conditional =
                class_denoiser_from(kind, input, labels.as_deref(), class, dtype).py()?;
            match guidance {
                0.0 => conditional,
                w => {
                    let (input, _, _) = resolve(kind, &given, file_dtype)?;
                    let unconditional = kind.build_from(input, &param, dtype, &device).py()?;
                    Box::new(Guided::new(conditional, unconditional, w).py()?)
                }
            }
        }
    };
    let framework = match &given {
        Given::Path(run) if kind.source() == Source::Run => {
            Some(read_state(run).py()?.config.framework)
        }
        _ => None,
    };
    Ok(Denoiser {
        framework,
        ..Denoiser::new(built, shape, dtype, kind.name)
    })
}

/// Every kind of the registry: (name, what it is built from, its parameter).
#[pyfunction]
pub fn denoiser_kinds() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    DENOISERS
        .iter()
        .map(|k| {
            let source = match k.source() {
                Source::TrainingRows => "examples",
                Source::Distribution => "distribution",
                Source::Run => "run",
            };
            (k.name, source, k.param)
        })
        .collect()
}

fn given_of<'py>(source: &Bound<'py, PyAny>) -> PyResult<Given<'py>> {
    if let Ok(d) = source.downcast::<Distribution>() {
        return Ok(Given::Distribution(d.clone()));
    }
    if let Ok(path) = source.extract::<PathBuf>() {
        return Ok(Given::Path(path));
    }
    let array = source
        .py()
        .import("numpy")?
        .call_method1("asarray", (source,))?;
    Ok(Given::Array(arrays::tensor(&array, "training examples")?))
}

/// What `kind` is built from, one example's shape and, for examples given
/// as an array, the dtype it computes in (the array's).
fn resolve<'a>(
    kind: &DenoiserKind,
    given: &'a Given<'_>,
    file_dtype: DType,
) -> PyResult<(Input<'a>, Vec<usize>, Option<DType>)> {
    let mismatch = |what: &str| {
        PyValueError::new_err(format!("denoiser {:?} is not built from {what}", kind.name))
    };
    Ok(match (kind.source(), given) {
        (Source::TrainingRows, Given::Array(x)) => {
            if x.rank() < 2 || x.dim(0).py()? == 0 {
                return Err(PyValueError::new_err(format!(
                    "training examples: expected [N, n] or [N, C, H, W] with N >= 1, got shape {:?}",
                    x.dims()
                )));
            }
            let shape = x.dims()[1..].to_vec();
            (Input::Examples(x.clone()), shape, Some(x.dtype()))
        }
        (Source::TrainingRows, Given::Path(path)) => {
            let x = diffusion_regimes::spec::training_examples(path, file_dtype).py()?;
            (Input::Examples(x.clone()), x.dims()[1..].to_vec(), None)
        }
        (Source::Distribution, Given::Distribution(d)) => {
            let mixture = d.get().mixture();
            let n = mixture.dim();
            (Input::Distribution(mixture), vec![n], Some(DType::F64))
        }
        (Source::Distribution, Given::Path(path)) => {
            let mixture = diffusion_regimes::data::load_distribution(path).py()?;
            let n = mixture.dim();
            (Input::Distribution(mixture), vec![n], Some(DType::F64))
        }
        (Source::Run, Given::Path(path)) => {
            let shape = read_state(path).py()?.config.sample_shape;
            (Input::Run(path), shape, Some(DType::F32))
        }
        (Source::TrainingRows, _) => return Err(mismatch("a distribution")),
        (Source::Distribution, _) => return Err(mismatch("an array")),
        (Source::Run, _) => {
            return Err(mismatch("an array or a distribution: give its run folder"))
        }
    })
}
