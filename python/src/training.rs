//! Training a crate model from Python, with `regimes train`'s hyperparameters
//! and defaults ([`TrainOptions`]), and the run folders it writes.

use std::ops::ControlFlow;
use std::path::PathBuf;

use diffusion_regimes::data::{heldout_set, load_examples, training_labels, training_set};
use diffusion_regimes::nn::checkpoint::{read_state, STATE_FILE};
use diffusion_regimes::nn::train::{LabelConditioning, RunData, Trainer};
use diffusion_regimes::nn::TrainOptions;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;

use crate::arrays;
use crate::denoisers::{denoiser, Denoiser};
use crate::errors::IntoPy;
use crate::interrupt;

/// A training run's folder (config.toml, train.npy, metrics.csv,
/// checkpoints/, state.json).
#[pyclass(module = "diffusion_regimes", frozen)]
pub struct Run {
    path: PathBuf,
}

#[pymethods]
impl Run {
    /// The trained network as a denoiser: its EMA weights ("ema") or the
    /// optimizer's own ("model").
    #[pyo3(signature = (weights="ema"))]
    fn denoiser(&self, py: Python<'_>, weights: &str) -> PyResult<Denoiser> {
        let kind = match weights {
            "ema" => "model",
            "model" => "model-raw",
            other => {
                return Err(PyValueError::new_err(format!(
                    "weights = {other}: use ema or model"
                )))
            }
        };
        let path = self.path.clone().into_pyobject(py)?.into_any();
        denoiser(kind, Some(&path), None, None, None, None, 0.0)
    }

    /// The folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Optimizer steps taken (at the latest checkpoint).
    #[getter]
    fn step(&self) -> PyResult<u64> {
        Ok(read_state(&self.path).py()?.step)
    }

    /// The run's config (config.toml) as JSON text.
    #[getter]
    fn config_json(&self) -> PyResult<String> {
        let config = read_state(&self.path).py()?.config;
        serde_json::to_string(&config).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!("Run({:?})", self.path.display().to_string())
    }
}

/// The run in `path`.
#[pyfunction]
pub fn load_run(path: PathBuf) -> PyResult<Run> {
    if !path.join(STATE_FILE).exists() {
        return Err(PyFileNotFoundError::new_err(format!(
            "{}: no training run here (no {STATE_FILE})",
            path.display()
        )));
    }
    Ok(Run { path })
}

/// Trains a network on the first `n` examples of `data` (an array [N, ...]
/// or a file / `regimes data` folder) of one seeded permutation, into
/// `out`. `options` is the JSON of the hyperparameters given (the rest keep
/// their defaults); `labels` (one per example) make it class-conditional.
/// A folder that already holds a run is resumed to `steps`, so a call
/// stopped by Ctrl-C continues where its last checkpoint left it.
/// `progress(step, steps, loss)` is called after every step. The held-out
/// loss's rows are `heldout` (an array shaped like the examples), else the
/// data's rows after the training set in the permutation.
#[pyfunction]
#[pyo3(signature = (data, n, out, options="{}", labels=None, device="cpu", progress=None, heldout=None))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    n: usize,
    out: PathBuf,
    options: &str,
    labels: Option<Vec<u32>>,
    device: &str,
    progress: Option<Py<PyAny>>,
    heldout: Option<&Bound<'_, PyAny>>,
) -> PyResult<Run> {
    let given: serde_json::Map<String, serde_json::Value> = serde_json::from_str(options)
        .map_err(|e| PyValueError::new_err(format!("training options: {e}")))?;
    let names: Vec<String> = given.keys().cloned().collect();
    let options: TrainOptions = serde_json::from_value(given.clone().into()).map_err(|e| {
        // serde names a bad value but not its key: find the key alone.
        let bad = given.iter().find(|(k, v)| {
            let one = serde_json::json!({ k.as_str(): v });
            serde_json::from_value::<TrainOptions>(one).is_err()
        });
        match bad {
            Some((key, _)) => PyValueError::new_err(format!("training option {key}: {e}")),
            None => PyValueError::new_err(format!("training options: {e}")),
        }
    })?;
    options
        .check_init_alone(names.iter().map(String::as_str), str::to_string)
        .py()?;
    let device = diffusion_regimes::device::device(device).py()?;
    let (examples, origin) = match data.extract::<PathBuf>() {
        Ok(path) => (load_examples(&path).py()?, path.display().to_string()),
        Err(_) => {
            let array = py.import("numpy")?.call_method1("asarray", (data,))?;
            let x = arrays::tensor(&array, "data")?;
            (
                x.to_dtype(candle_core::DType::F32).py()?,
                "array".to_string(),
            )
        }
    };
    let heldout = match heldout {
        Some(rows) => {
            let array = py.import("numpy")?.call_method1("asarray", (rows,))?;
            Some(
                arrays::tensor(&array, "heldout")?
                    .to_dtype(candle_core::DType::F32)
                    .py()?,
            )
        }
        None => heldout_set(&examples, n, options.eval_points, options.subset_seed).py()?,
    };
    if let Some(labels) = &labels {
        if labels.len() != examples.dim(0).py()? {
            return Err(PyValueError::new_err(format!(
                "labels: {} given for {} examples",
                labels.len(),
                examples.dim(0).py()?
            )));
        }
    }
    let step = |step: u64, steps: u64, loss: f64| {
        if let Some(f) = &progress {
            Python::with_gil(|py| {
                // A failing progress callback is not worth stopping a run for.
                let _ = f.bind(py).call1((step, steps, loss));
            });
        }
    };
    interrupt::run(py, || {
        let mut trainer = match out.join(STATE_FILE).exists() {
            true => Trainer::resume(&out, Some(options.steps), &device)?,
            false => {
                let train = training_set(&examples, n, options.subset_seed)?;
                let mut config = options.config(&origin, &train)?;
                let subset_labels = match &labels {
                    Some(all) => {
                        config.labels = Some(LabelConditioning::for_labels(all, options.p_uncond));
                        Some(training_labels(all, n, 0, options.subset_seed)?)
                    }
                    None => None,
                };
                Trainer::start(
                    &out,
                    config.check()?,
                    RunData::new(&train)
                        .labelled(subset_labels.as_deref())
                        .heldout(heldout.as_ref()),
                    &device,
                )?
            }
        };
        trainer.run(&mut |p| {
            step(p.step, p.steps, p.loss);
            ControlFlow::Continue(())
        })
    })?;
    Ok(Run { path: out })
}
