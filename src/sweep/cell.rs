//! One cell of a sweep: one model at one training-set size N, trained,
//! sampled and scored in its own folder. A cell is finished when its
//! `cell.json` exists; that file is written last, atomically.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::budget::{budget_file, budget_samples};
use super::config::Split;
use super::engine::Sweep;
use super::training::{final_loss, train_models};
use crate::data::npy::write_npy;
use crate::denoise::{Denoiser, EmpiricalDenoiser};
use crate::framework::Framework;
use crate::io::{read_json, write_json};
use crate::metrics::{denoiser_gap, ratio_memorization, Bootstrap, Score};
use crate::nn::checkpoint::{load_model, read_state, Weights};
use crate::nn::Arch;
use crate::{Error, Result};

pub const CELL_FILE: &str = "cell.json";
pub const SAMPLES_FILE: &str = "samples.npy";

/// What a cell samples from: a network trained on the N examples, or their
/// empirical (memorizing) optimal denoiser (THEORY §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Model {
    Empirical,
    Trained {
        arch: Arch,
        /// The training framework (THEORY §9); absent: EDM.
        #[serde(default, skip_serializing_if = "Framework::is_edm")]
        framework: Framework,
        seed: u64,
    },
}

impl Model {
    /// `empirical`, or the architecture's label with the seed, after the
    /// framework unless it is EDM: `mlp-w64-d4-s0`, `flow-mlp-w64-d4-s0`.
    pub fn label(&self) -> String {
        match self {
            Model::Empirical => "empirical".into(),
            Model::Trained {
                arch,
                framework,
                seed,
            } if framework.is_edm() => format!("{}-s{seed}", arch.label()),
            Model::Trained {
                arch,
                framework,
                seed,
            } => format!("{framework}-{}-s{seed}", arch.label()),
        }
    }

    /// The framework the model trains with (EDM for the empirical denoiser,
    /// which is sampled as EDM samples).
    pub fn framework(&self) -> Framework {
        match self {
            Model::Empirical => Framework::EDM,
            Model::Trained { framework, .. } => *framework,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub n: usize,
    pub model: Model,
}

impl Cell {
    /// `ROOT/cells/n00064/mlp-w64-d4-s0`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join("cells")
            .join(format!("n{:05}", self.n))
            .join(self.model.label())
    }

    /// The denoiser this cell samples, and the dtype it samples in: the
    /// empirical denoiser of its training set (f64, THEORY §4), or its
    /// trained network's EMA weights on the sweep's device (f32).
    pub fn denoiser(&self, sweep: &Sweep) -> Result<(Box<dyn Denoiser>, DType)> {
        Ok(match self.model {
            Model::Empirical => {
                let rows = self.training_set(sweep)?.flatten_from(1)?;
                let empirical = EmpiricalDenoiser::new(&rows.to_dtype(DType::F64)?)?;
                (Box::new(empirical), DType::F64)
            }
            Model::Trained { .. } => {
                let run = self.dir(&sweep.root).join("run");
                let model = load_model(&run, Weights::Ema, &sweep.device)?;
                (Box::new(model), DType::F32)
            }
        })
    }

    /// Which of the disjoint training sets of size N this cell learns
    /// (`split = "disjoint"`: the seed's position in `seeds`); 0, the nested
    /// set, otherwise and for the empirical denoiser.
    pub fn part(&self, sweep: &Sweep) -> usize {
        match (&self.model, sweep.config.split) {
            (Model::Trained { seed, .. }, Split::Disjoint) => sweep
                .config
                .seeds
                .iter()
                .position(|s| s == seed)
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// The cell's training set (THEORY §4's N examples).
    pub fn training_set(&self, sweep: &Sweep) -> Result<Tensor> {
        sweep.training_part(self.n, self.part(sweep))
    }

    /// Training steps this cell needs (0 for the empirical denoiser).
    pub fn steps(&self, sweep: &Sweep) -> u64 {
        match self.model {
            Model::Empirical => 0,
            Model::Trained { .. } => sweep.config.train.steps,
        }
    }
}

/// A score's value and bootstrap 95% interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci95: [f64; 2],
}

impl From<&Score> for Estimate {
    fn from(s: &Score) -> Self {
        Estimate {
            value: s.value,
            ci95: s.ci95,
        }
    }
}

/// What a finished cell measured (its `cell.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub label: String,
    /// Generalization score: 1 - memorized fraction (d1/d2 < 1/3, THEORY §7).
    pub generalization: Estimate,
    pub memorization: Estimate,
    /// Relative gaps to the empirical and to the true denoiser at
    /// `metrics.gap_sigmas`, on fresh clean points (THEORY §7).
    pub gap_sigmas: Vec<f64>,
    pub gap_to_empirical: Vec<f64>,
    pub gap_to_truth: Option<Vec<f64>>,
    /// Mean logged training loss over the last 10% of steps, and training seconds.
    pub final_loss: Option<f64>,
    pub train_seconds: Option<f64>,
}

impl CellResult {
    pub fn read(dir: &Path) -> Result<Self> {
        read_json(&dir.join(CELL_FILE))
    }
}

/// Trains (or resumes), samples and scores `cells`, their networks trained
/// together where they can ([`train_models`]); `on_step` is called after
/// every model's training step with the number of steps just taken. With
/// budgets (THEORY §13) the training runs in segments ending at each budget,
/// and each model is scored at each into `budgets/step-XXXXXXXX.json`, its
/// samples kept beside them (`.npy`). Returns each cell's result, or the
/// divergence that stopped it (the others go on); any other error stops all.
pub fn run_cells(
    sweep: &Sweep,
    cells: &[&Cell],
    on_step: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Result<CellResult>>> {
    let dirs: Vec<PathBuf> = cells.iter().map(|c| c.dir(&sweep.root)).collect();
    let empirical = cells
        .iter()
        .map(|c| {
            EmpiricalDenoiser::new(
                &c.training_set(sweep)?
                    .flatten_from(1)?
                    .to_dtype(DType::F64)?,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut diverged: Vec<Option<Error>> = cells.iter().map(|_| None).collect();
    let steps = sweep.config.train.steps;
    // The trained cells no divergence has stopped.
    let live = |diverged: &[Option<Error>]| -> Vec<usize> {
        (0..cells.len())
            .filter(|&k| matches!(cells[k].model, Model::Trained { .. }) && diverged[k].is_none())
            .collect()
    };
    let mut from = 0;
    let segments = sweep.config.train.budgets.iter().filter(|&&b| b < steps);
    for &until in segments.chain([&steps]) {
        // A budget scored by an earlier process, whose run may be past it.
        let (scored, due): (Vec<usize>, Vec<usize>) = live(&diverged)
            .into_iter()
            .partition(|&k| until < steps && budget_file(&dirs[k], until).exists());
        scored.iter().for_each(|_| on_step(until - from));
        let runs: Vec<(PathBuf, &Cell)> = due
            .iter()
            .map(|&k| (dirs[k].join("run"), cells[k]))
            .collect();
        let trained = train_models(sweep, &runs, (from, until), None, on_step)?;
        for ((k, (run, _)), outcome) in due.into_iter().zip(&runs).zip(trained) {
            match outcome {
                Ok(_) if until < steps => {
                    let score_budget = || -> Result<()> {
                        let run = Some((run.as_path(), until));
                        let (result, samples) = score(sweep, cells[k], &empirical[k], run)?;
                        write_npy(&budget_samples(&dirs[k], until), &samples, DType::F32)?;
                        write_json(&budget_file(&dirs[k], until), &result)
                    };
                    score_budget().map_err(|e| Error::at(&dirs[k], e))?;
                }
                Ok(_) => {}
                Err(e @ Error::Diverged { .. }) => diverged[k] = Some(e),
                Err(e) => return Err(Error::at(&dirs[k], e)),
            }
        }
        from = until;
    }
    cells
        .iter()
        .zip(diverged)
        .enumerate()
        .map(|(k, (cell, diverged))| {
            if let Some(e) = diverged {
                return Ok(Err(e));
            }
            let run = matches!(cell.model, Model::Trained { .. }).then(|| dirs[k].join("run"));
            let run = run.as_deref().map(|run| (run, steps));
            let score_cell = || -> Result<CellResult> {
                let (result, samples) = score(sweep, cell, &empirical[k], run)?;
                write_npy(&dirs[k].join(SAMPLES_FILE), &samples, DType::F32)?;
                write_json(&dirs[k].join(CELL_FILE), &result)?;
                Ok(result)
            };
            Ok(Ok(score_cell().map_err(|e| Error::at(&dirs[k], e))?))
        })
        .collect()
}

/// Samples and scores the cell's denoiser as it is now (for a trained cell,
/// its run at `steps`); returns the result and the samples.
fn score(
    sweep: &Sweep,
    cell: &Cell,
    empirical: &EmpiricalDenoiser,
    run: Option<(&Path, u64)>,
) -> Result<(CellResult, Tensor)> {
    // The empirical cell samples the very denoiser it is scored against.
    let network;
    let (denoiser, dtype): (&dyn Denoiser, DType) = match cell.model {
        Model::Empirical => (empirical, DType::F64),
        Model::Trained { .. } => {
            network = cell.denoiser(sweep)?;
            (&*network.0, network.1)
        }
    };
    let measured = measure(sweep, denoiser, dtype, empirical, &cell.model)?;
    let (final_loss, train_seconds) = match run {
        Some((run, steps)) => (
            Some(final_loss(run, steps)?),
            Some(read_state(run)?.elapsed_seconds),
        ),
        None => (None, None),
    };
    let result = CellResult {
        cell: cell.clone(),
        label: cell.model.label(),
        generalization: Estimate::from(&measured.memorized.complement("generalization")),
        memorization: Estimate::from(&measured.memorized),
        gap_sigmas: sweep.config.metrics.gap_sigmas.clone(),
        gap_to_empirical: measured.gap_to_empirical,
        gap_to_truth: measured.gap_to_truth,
        final_loss,
        train_seconds,
    };
    Ok((result, measured.samples))
}

/// What [`measure`] finds for one denoiser.
pub struct Measured {
    pub samples: Tensor,
    /// Fraction of samples with d1/d2 < 1/3 against the training set.
    pub memorized: Score,
    pub gap_to_empirical: Vec<f64>,
    pub gap_to_truth: Option<Vec<f64>>,
}

/// Samples `denoiser`, the cell's `model`, as the sweep says (samples 0..M
/// of the sampling seed, in `dtype`, by Heun or the model's native sampler)
/// and scores it against `empirical`, the memorizing denoiser of its
/// training set: memorized fraction and the gaps to it and to the true
/// denoiser on the sweep's fresh points.
pub fn measure(
    sweep: &Sweep,
    denoiser: &dyn Denoiser,
    dtype: DType,
    empirical: &EmpiricalDenoiser,
    model: &Model,
) -> Result<Measured> {
    let sampling = &sweep.config.sampling;
    let plan = sampling.plan(model)?;
    let samples = sampling.draw_with(denoiser, &plan, sampling.samples, dtype)?;
    check_finite(&samples, &model.label())?;
    let bootstrap = Bootstrap {
        resamples: sweep.config.metrics.resamples,
        seed: sampling.seed,
    };
    // The training rows are f32 (exactly representable), so the search runs in f32.
    let train = empirical.train()?.to_dtype(DType::F32)?;
    let memorized = ratio_memorization(&samples, &train, "raw", bootstrap)?;
    let sigmas = &sweep.config.metrics.gap_sigmas;
    let gap = |reference: &dyn Denoiser| {
        denoiser_gap(denoiser, reference, &sweep.fresh, sigmas, sampling.seed)
    };
    Ok(Measured {
        gap_to_empirical: gap(empirical)?,
        gap_to_truth: sweep.truth.as_ref().map(|t| gap(&t.mixture)).transpose()?,
        memorized,
        samples,
    })
}

/// Refuses to write samples holding NaN or infinity (a diverged model).
pub fn check_finite(samples: &Tensor, what: &str) -> Result<()> {
    let total = samples
        .to_dtype(DType::F64)?
        .abs()?
        .sum_all()?
        .to_scalar::<f64>()?;
    match total.is_finite() {
        true => Ok(()),
        false => Err(Error::invalid(
            format!("samples of {what}"),
            "NaN or infinite values",
            "the model diverged; lower train.lr or check the data",
        )),
    }
}
