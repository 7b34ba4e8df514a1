//! The registered experiments, run from Python: the report comes back as
//! the JSON the experiment writes, figures are written as the CLI writes them.

use std::path::{Path, PathBuf};

use diffusion_regimes::experiments::{find, EXPERIMENTS};
use diffusion_regimes::io::write_atomic;
use diffusion_regimes::sweep::RunOptions;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::errors::IntoPy;
use crate::interrupt;

/// Every registered experiment: (name, one line about it).
#[pyfunction]
pub fn experiments() -> Vec<(&'static str, &'static str)> {
    EXPERIMENTS.iter().map(|e| (e.name, e.about)).collect()
}

/// Runs experiment `name` with the TOML config at `config` (default: its
/// own in experiments/configs/), or with `config_json` (the config as JSON,
/// written as TOML beside the cells), cells in `out`, figures in `figures`,
/// on `jobs` workers, up to `together` MLP cells trained as one network
/// (default 1). Returns the report's JSON text (None while other shards are
/// unfinished). A rerun resumes: finished cells are kept.
#[pyfunction]
#[pyo3(signature = (name, config=None, config_json=None, out=None, figures=None, jobs=None, data=None, together=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_experiment(
    py: Python<'_>,
    name: &str,
    config: Option<PathBuf>,
    config_json: Option<&str>,
    out: Option<PathBuf>,
    figures: Option<PathBuf>,
    jobs: Option<usize>,
    data: Option<PathBuf>,
    together: Option<usize>,
) -> PyResult<Option<String>> {
    let entry = find(name).py()?;
    let config = match (config, config_json) {
        (_, Some(json)) => write_config(name, json, out.as_deref())?,
        (Some(path), None) => path,
        (None, None) => entry.default_config(),
    };
    let defaults = RunOptions::new();
    let options = RunOptions {
        out,
        figures,
        jobs: jobs.unwrap_or(defaults.jobs),
        data,
        together: together.unwrap_or(defaults.together).max(1),
        ..defaults
    };
    let report = interrupt::run(py, || entry.run(&config, &options))?;
    Ok(report.map(|r| r.to_string()))
}

/// The config given as JSON, written as TOML into `out` (or the system's
/// temporary folder) as `NAME.toml`, where the experiment reads it.
fn write_config(name: &str, json: &str, out: Option<&Path>) -> PyResult<PathBuf> {
    let value: toml::Value =
        serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
    let text =
        toml::to_string(&value).map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
    let dir = match out {
        Some(out) => out.to_path_buf(),
        None => std::env::temp_dir().join(format!("diffusion_regimes_{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| PyOSError::new_err(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("{name}.toml"));
    write_atomic(&path, text.as_bytes()).py()?;
    Ok(path)
}
