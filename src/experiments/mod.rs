//! The experiments: each a type implementing [`Experiment`] (a typed config
//! read from TOML, a typed serializable report, figures drawn from the
//! report), listed once in [`EXPERIMENTS`]. That registry serves both the
//! thin binaries in `experiments/` and `regimes run NAME`.
//!
//! A new experiment is one file here plus one line in [`EXPERIMENTS`] (and,
//! for its own binary, three lines in `experiments/`).
//!
//! ```
//! use diffusion_regimes::experiments::{find, EXPERIMENTS};
//! assert!(EXPERIMENTS.iter().any(|e| e.name == "boundaries"));
//! assert_eq!(find("collapse").unwrap().default_config(), std::path::Path::new("experiments/configs/collapse.toml"));
//! assert!(find("nope").is_err());
//! ```

mod boundaries;
mod calibration;
mod closed_forms;
mod collapse;
mod conditional;
mod dynamics;
mod finetuning;
mod frameworks;
mod inverse_problems;
mod jacobian_rank;
mod molrg_threshold;
mod scored;
mod sweeps;
mod training_time;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use boundaries::{gap_crossing, Boundaries, BoundaryConfig, BoundaryReport};
pub use calibration::{calibrate_patches, CalibratedStep, Calibration};
pub use closed_forms::{
    CandidateFit, CandidateSettings, ClosedForms, ClosedFormsConfig, ClosedFormsReport,
};
pub use collapse::{Collapse, CollapseConfig, CollapseReport};
pub use conditional::{
    Agreement, Conditional, ConditionalConfig, ConditionalReport, GuidanceCurves,
};
pub use dynamics::{
    Dynamics, DynamicsConfig, DynamicsPoint, DynamicsReport, ModelTimes, PowerFit, TimeBand,
};
pub use finetuning::{BaseConfig, FinetunePoint, Finetuning, FinetuningConfig, FinetuningReport};
pub use frameworks::{
    DisjointPoint, FrameworkPoint, Frameworks, FrameworksConfig, FrameworksReport, ModelPoint,
};
pub use inverse_problems::{InverseConfig, InverseProblems, InverseReport, OperatorCurves};
pub use jacobian_rank::{rank_curve, JacobianRank, RankConfig, RankReport};
pub use molrg_threshold::{MolrgThreshold, ThresholdConfig, ThresholdReport};
pub use scored::{ModelScores, ScoredPoint};
pub use sweeps::{CrossArchitecture, OptimalDenoiser, RegimesSweep};
pub use training_time::{TimeConfig, TimePoint, TimeReport, TrainingTime};

use crate::io::{write_atomic, write_json};
use crate::plot::{save_figure, Figure};
use crate::sweep::{load_toml, RunOptions};
use crate::{Error, Result};

/// One experiment: what it reads, what it measures, what it draws.
pub trait Experiment {
    /// Its binary's name, its config's file stem and `regimes run NAME`.
    const NAME: &'static str;
    /// One line for `regimes run list`.
    const ABOUT: &'static str;
    /// Whether its work is cells trained in parallel (`--jobs` of them, one
    /// thread each); otherwise every core serves one computation at a time.
    const PARALLEL_CELLS: bool = true;
    /// The config `run` takes, checked.
    type Config;
    type Report: Serialize;

    /// Reads and checks the config at `path` with the options applied (the
    /// one place a config is validated; `run` receives it checked).
    fn load(path: &Path, options: &RunOptions) -> Result<Self::Config>;

    /// Runs the share of the work that `options.shard` owns; the report once
    /// the whole experiment is finished (None while other shards are not).
    fn run(config: &Self::Config, options: &RunOptions) -> Result<Option<Self::Report>>;

    /// Where the figures go when `options.figures` is not given.
    fn figure_dir(config: &Self::Config, options: &RunOptions) -> PathBuf;

    /// Writes the report, its tables and its figures into `dir`.
    fn figures(report: &Self::Report, dir: &Path) -> Result<()>;
}

/// The TOML at `path` of `experiment`, which reads no data file (so
/// `--data` is an error).
pub fn load_without_data<T: DeserializeOwned>(
    experiment: &str,
    path: &Path,
    options: &RunOptions,
) -> Result<T> {
    if options.data.is_some() {
        return Err(Error::format(
            path,
            format!("{experiment} reads no data file, so --data does not apply"),
        ));
    }
    load_toml(path)
}

/// An experiment as the registry holds it: its name and a type-erased run.
pub struct Entry {
    pub name: &'static str,
    pub about: &'static str,
    pub parallel_cells: bool,
    run: fn(&Path, &RunOptions) -> Result<Option<serde_json::Value>>,
    check: fn(&Path, &RunOptions) -> Result<()>,
}

impl Entry {
    pub const fn of<E: Experiment>() -> Self {
        Self {
            name: E::NAME,
            about: E::ABOUT,
            parallel_cells: E::PARALLEL_CELLS,
            run: run_experiment::<E>,
            check: |path, options| E::load(path, options).map(drop),
        }
    }

    /// `experiments/configs/NAME.toml`, relative to the repository root.
    pub fn default_config(&self) -> PathBuf {
        Path::new("experiments/configs").join(format!("{}.toml", self.name))
    }

    /// Loads the config at `path`, runs the experiment and, when it is
    /// finished, writes its report and figures and returns the report (as
    /// its JSON); None while other shards are not finished.
    pub fn run(&self, config: &Path, options: &RunOptions) -> Result<Option<serde_json::Value>> {
        (self.run)(config, options)
    }

    /// Loads and checks the config at `path` without running anything.
    pub fn check(&self, config: &Path, options: &RunOptions) -> Result<()> {
        (self.check)(config, options)
    }
}

fn run_experiment<E: Experiment>(
    path: &Path,
    options: &RunOptions,
) -> Result<Option<serde_json::Value>> {
    let config = E::load(path, options)?;
    let Some(report) = E::run(&config, options)? else {
        return Ok(None);
    };
    let dir = options
        .figures
        .clone()
        .unwrap_or_else(|| E::figure_dir(&config, options));
    E::figures(&report, &dir)?;
    serde_json::to_value(&report)
        .map(Some)
        .map_err(|e| Error::invalid("report", E::NAME, e.to_string()))
}

/// Every experiment, by name.
pub const EXPERIMENTS: &[Entry] = &[
    Entry::of::<RegimesSweep>(),
    Entry::of::<OptimalDenoiser>(),
    Entry::of::<CrossArchitecture>(),
    Entry::of::<Boundaries>(),
    Entry::of::<Collapse>(),
    Entry::of::<MolrgThreshold>(),
    Entry::of::<JacobianRank>(),
    Entry::of::<TrainingTime>(),
    Entry::of::<Dynamics>(),
    Entry::of::<InverseProblems>(),
    Entry::of::<Conditional>(),
    Entry::of::<Frameworks>(),
    Entry::of::<ClosedForms>(),
    Entry::of::<Finetuning>(),
];

/// The experiment called `name`.
pub fn find(name: &str) -> Result<&'static Entry> {
    EXPERIMENTS.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = EXPERIMENTS.iter().map(|e| e.name).collect();
        Error::invalid(
            "experiment",
            name,
            format!("use one of {}", names.join(", ")),
        )
    })
}

/// Writes `dir/name.json` (the report), `dir/name.csv` and the figure
/// `dir/name.png` and `.svg`, creating `dir`: the output of a
/// single-figure experiment.
pub fn write_outputs(
    dir: &Path,
    name: &str,
    report: &impl Serialize,
    csv: &str,
    figure: &impl Figure,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_json(&dir.join(format!("{name}.json")), report)?;
    write_atomic(&dir.join(format!("{name}.csv")), csv.as_bytes())?;
    save_figure(&dir.join(name), figure)?;
    eprintln!(
        "wrote {name}.json, {name}.csv and figures to {}",
        dir.display()
    );
    Ok(())
}

/// `value` for a CSV cell: empty when absent.
fn csv_cell(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}
