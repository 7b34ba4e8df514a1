//! The training-time axis (Bonnaire et al. 2025, THEORY §8): one model per N
//! trained in segments up to log-spaced steps; after each segment the EMA
//! model is sampled and scored. The onset of memorization (the step at which
//! half the samples are memorized) is fitted against N, ln t = a + b ln N, and
//! the time to generalize is the step at which the gap to the true denoiser
//! is smallest.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::DType;
use serde::{Deserialize, Serialize};

use super::{csv_cell, Experiment, RunOptions};
use crate::denoise::EmpiricalDenoiser;
use crate::io::{read_json, write_atomic, write_json};
use crate::jobs::{progress_bar, run_parallel};
use crate::metrics::{crossing, least_squares};
use crate::nn::checkpoint::{load_model, Weights};
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sweep::{measure, train_model, Cell, Model, Sweep, SweepConfig};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// Steps after which each model is sampled and scored (increasing).
    pub checkpoints: Vec<u64>,
    /// The grid: its ns, models and seeds; train.steps is ignored.
    pub sweep: SweepConfig,
}

/// One model at one checkpoint (`time/step-XXXXXXXX.json` in its cell).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimePoint {
    pub n: usize,
    pub model: String,
    pub step: u64,
    pub memorized: f64,
    pub gap_to_empirical: Vec<f64>,
    pub gap_to_truth: Option<Vec<f64>>,
    /// The EMA model's losses on its run's fixed draws of training and
    /// held-out rows (THEORY §15); absent for a run that does not evaluate.
    #[serde(default)]
    pub train_loss: Option<f64>,
    #[serde(default)]
    pub heldout_loss: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimeReport {
    pub gap_sigmas: Vec<f64>,
    /// In (model, N, step) order.
    pub points: Vec<TimePoint>,
}

/// Trains `cell` segment by segment, scoring after each; finished
/// checkpoints are read back, so a killed run resumes where it stopped.
pub(super) fn run_cell(
    sweep: &Sweep,
    cell: &Cell,
    checkpoints: &[u64],
    on_step: &(dyn Fn(u64) + Sync),
) -> Result<Vec<TimePoint>> {
    let Model::Trained { .. } = &cell.model else {
        return Ok(Vec::new());
    };
    let dir = cell.dir(&sweep.root);
    let run = dir.join("run");
    let train = cell.training_set(sweep)?;
    let empirical = EmpiricalDenoiser::new(&train.flatten_from(1)?.to_dtype(DType::F64)?)?;
    let mut points = Vec::new();
    for &step in checkpoints {
        let file = dir.join("time").join(format!("step-{step:08}.json"));
        if file.exists() {
            points.push(read_json(&file)?);
            continue;
        }
        // Checkpoints only where segments end (each run saves its last step).
        let every = checkpoints.last().copied();
        let segment = (points.last().map_or(0, |p: &TimePoint| p.step), step);
        let losses = train_model(sweep, &run, cell, segment, every, on_step)?;
        let model = load_model(&run, Weights::Ema, &sweep.device)?;
        let m = measure(sweep, &model, DType::F32, &empirical, &cell.model)?;
        let point = TimePoint {
            n: cell.n,
            model: cell.model.label(),
            step,
            memorized: m.memorized.value,
            gap_to_empirical: m.gap_to_empirical,
            gap_to_truth: m.gap_to_truth,
            train_loss: losses.as_ref().map(|l| l.train.total),
            heldout_loss: losses.and_then(|l| l.heldout).map(|l| l.total),
        };
        write_json(&file, &point)?;
        points.push(point);
    }
    Ok(points)
}

/// The last of `checkpoints` (the config at `path`'s), the budget; an
/// error unless they are positive and increasing.
pub(super) fn last_checkpoint(path: &Path, checkpoints: &[u64]) -> Result<u64> {
    match checkpoints.windows(2).all(|w| w[0] < w[1]) && checkpoints.first() > Some(&0) {
        true => Ok(*checkpoints.last().expect("not empty")),
        false => Err(Error::format(
            path,
            "checkpoints must be positive and increasing",
        )),
    }
}

/// Trains every trained cell of `sweep` that `options.shard` owns to each
/// of `checkpoints` ([`run_cell`]), `--jobs` cells at a time; each cell
/// with its points, in grid order.
pub(super) fn train_cells(
    sweep: &Sweep,
    checkpoints: &[u64],
    options: &RunOptions,
) -> Result<Vec<(Cell, Vec<TimePoint>)>> {
    let cells: Vec<Cell> = Sweep::grid(&sweep.config)
        .into_iter()
        .enumerate()
        .filter(|(k, c)| options.shard.owns(*k) && c.model != Model::Empirical)
        .map(|(_, c)| c)
        .collect();
    let last = checkpoints.last().copied().unwrap_or(0);
    let bar = progress_bar(last * cells.len() as u64, "steps");
    let collected = Mutex::new(Vec::new());
    run_parallel(&cells, options.jobs, &bar, |cell| {
        let points = run_cell(sweep, cell, checkpoints, &|s| bar.inc(s))?;
        collected
            .lock()
            .expect("no worker panics holding it")
            .push((cell.clone(), points));
        Ok(())
    })?;
    let mut cells = collected.into_inner().expect("workers have finished");
    let grid = Sweep::grid(&sweep.config);
    let order = |c: &Cell| grid.iter().position(|g| g == c);
    cells.sort_by_key(|(c, _)| order(c));
    Ok(cells)
}

impl TimeReport {
    /// The models, in point order.
    fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = self.points.iter().map(|p| p.model.as_str()).collect();
        models.dedup();
        models
    }

    /// The training sizes of `model`, in point order.
    fn ns(&self, model: &str) -> Vec<usize> {
        let mut ns: Vec<usize> = self.of(model).map(|p| p.n).collect();
        ns.dedup();
        ns
    }

    fn of<'a>(&'a self, model: &'a str) -> impl Iterator<Item = &'a TimePoint> + 'a {
        self.points.iter().filter(move |p| p.model == model)
    }

    /// (step, value) of `model` at `n`.
    fn curve(&self, model: &str, n: usize, value: impl Fn(&TimePoint) -> f64) -> Vec<(f64, f64)> {
        self.of(model)
            .filter(|p| p.n == n)
            .map(|p| (p.step as f64, value(p)))
            .collect()
    }

    fn gap_to_truth(&self, model: &str, n: usize) -> Vec<(f64, f64)> {
        self.curve(model, n, |p| {
            p.gap_to_truth.as_ref().map_or(f64::NAN, |g| g[0])
        })
    }

    /// Per model and N: the memorization onset and the step closest to the
    /// true denoiser; per model, the fit of the onsets against N.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for model in self.models() {
            let mut onsets = Vec::new();
            for n in self.ns(model) {
                let onset = crossing(&self.curve(model, n, |p| p.memorized), 0.5);
                let best = self
                    .gap_to_truth(model, n)
                    .into_iter()
                    .filter(|p| p.1.is_finite())
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                text.push_str(&format!(
                    "{model} N = {n}: memorization onset (half memorized) at step {}, closest to the true denoiser (sigma = {}) at step {}\n",
                    onset.map_or("never".into(), |t| format!("{t:.0}")),
                    self.gap_sigmas[0],
                    best.map_or("-".into(), |b| format!("{:.0} (gap {:.3})", b.0, b.1)),
                ));
                onsets.extend(onset.map(|t| ((n as f64).ln(), t.ln())));
            }
            text.push_str(&match least_squares(&onsets) {
                Some((b, a)) => format!(
                    "{model}: onset step ~ {:.1} N^{b:.2} over {} sizes (peers: exponent 1)\n",
                    a.exp(),
                    onsets.len()
                ),
                None => format!("{model}: fewer than two sizes reached half memorized; no fit\n"),
            });
        }
        text
    }

    /// One row per point and gap level.
    fn csv(&self) -> String {
        let mut csv = String::from("model,n,step,memorized,sigma,gap_to_empirical,gap_to_truth\n");
        for p in &self.points {
            for (k, s) in self.gap_sigmas.iter().enumerate() {
                let truth = csv_cell(p.gap_to_truth.as_ref().map(|g| g[k]));
                csv.push_str(&format!(
                    "{},{},{},{},{s},{},{truth}\n",
                    p.model, p.n, p.step, p.memorized, p.gap_to_empirical[k]
                ));
            }
        }
        csv
    }

    /// `model`'s memorized fraction and gaps against the step.
    fn charts(&self, model: &str) -> [LineChart; 2] {
        let (mut memorized, mut gaps) = (Vec::new(), Vec::new());
        for (k, n) in self.ns(model).into_iter().enumerate() {
            let line = |label: String, points, dashed| Series {
                label,
                points,
                color: k,
                dashed,
                ..Series::default()
            };
            memorized.push(line(
                format!("N = {n}"),
                self.curve(model, n, |p| p.memorized),
                false,
            ));
            gaps.push(line(
                format!("N = {n} to empirical"),
                self.curve(model, n, |p| p.gap_to_empirical[0]),
                false,
            ));
            // Data from a file has no true denoiser, hence no dashed curve.
            let truth = self.gap_to_truth(model, n);
            if truth.iter().any(|p| p.1.is_finite()) {
                gaps.push(line(format!("N = {n} to truth"), truth, true));
            }
        }
        let with_truth = self.points.iter().any(|p| p.gap_to_truth.is_some());
        let gap_title = match with_truth {
            true => format!("{model}: gaps during training (dashed: truth)"),
            false => format!("{model}: gap to the empirical denoiser during training"),
        };
        let chart = |title: String, y: Axis, series| LineChart {
            title,
            x: Axis::new("training step", Scale::Log2),
            y,
            series,
            shades: Vec::new(),
        };
        [
            chart(
                format!("{model}: memorization during training"),
                Axis::fixed(
                    "memorized fraction (d1/d2 < 1/3)",
                    Scale::Linear,
                    (0.0, 1.0),
                ),
                memorized,
            ),
            chart(
                gap_title,
                Axis::new(
                    format!("relative gap at sigma = {}", self.gap_sigmas[0]),
                    Scale::Log10,
                ),
                gaps,
            ),
        ]
    }
}

pub struct TrainingTime;

impl Experiment for TrainingTime {
    const NAME: &'static str = "training_time";
    const ABOUT: &'static str =
        "one model per N trained to log-spaced steps: memorized fraction and gaps vs step";
    type Config = TimeConfig;
    type Report = TimeReport;

    fn load(path: &Path, options: &RunOptions) -> Result<TimeConfig> {
        let mut c: TimeConfig = crate::sweep::load_toml(path)?;
        c.sweep = options.with_data(c.sweep, path)?;
        c.sweep.train.steps = last_checkpoint(path, &c.checkpoints)?;
        Ok(c)
    }

    fn run(c: &TimeConfig, options: &RunOptions) -> Result<Option<TimeReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        let cells = train_cells(&sweep, &c.checkpoints, options)?;
        if options.shard.count > 1 {
            eprintln!("shard done; rerun without --shard to draw the figures");
            return Ok(None);
        }
        let mut points: Vec<TimePoint> = cells.into_iter().flat_map(|(_, p)| p).collect();
        points
            .sort_by(|a, b| (a.model.as_str(), a.n, a.step).cmp(&(b.model.as_str(), b.n, b.step)));
        let report = TimeReport {
            gap_sigmas: c.sweep.metrics.gap_sigmas.clone(),
            points,
        };
        print!("{}", report.summary());
        Ok(Some(report))
    }

    fn figure_dir(c: &TimeConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep)
    }

    fn figures(report: &TimeReport, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join("training_time.json"), report)?;
        write_atomic(&dir.join("training_time.csv"), report.csv().as_bytes())?;
        for model in report.models() {
            let [memorized, gaps] = report.charts(model);
            save_figure(&dir.join(format!("memorized_vs_step_{model}")), &memorized)?;
            save_figure(&dir.join(format!("gap_vs_step_{model}")), &gaps)?;
        }
        eprintln!(
            "wrote training_time.json, .csv and figures to {}",
            dir.display()
        );
        Ok(())
    }
}
