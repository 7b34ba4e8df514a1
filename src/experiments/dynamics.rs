//! Training dynamics (Bonnaire et al. 2025, Favero et al. 2025; THEORY
//! §15): a grid of N x capacity (the sweep's models) x seeds, each model
//! trained once through log-spaced checkpoints (the `training_time` cells,
//! extended segment by segment), and at each checkpoint the memorized
//! fraction of its samples, its gap to the true denoiser and its training
//! and held-out losses on fixed draws. Per model: tau_gen (the first
//! checkpoint within `tolerance` of its best gap to the truth, or of its
//! lowest held-out loss without a truth), tau_level (the time its gap, or
//! held-out loss, first falls to a fixed `level`: the time to a given
//! quality, which Bonnaire et al. find independent of N), tau_mem (half its samples
//! memorized) and tau_mem by the losses (the held-out loss `loss_gap` above
//! the training loss, relative). Per capacity: fits tau = a N^alpha with
//! bootstrap intervals over seeds, and the phase diagram. The grid runs
//! once per regression target (`targets`), each in its own folder
//! (OUT/sample, OUT/empirical).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::training_time::{last_checkpoint, train_cells, TimePoint};
use super::{csv_cell, Experiment, RunOptions};
use crate::io::{write_atomic, write_json};
use crate::metrics::{crossing, least_squares, Bootstrap};
use crate::nn::train::Target;
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sweep::{Model, SweepConfig};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicsConfig {
    /// Steps after which each model is sampled and scored (increasing;
    /// log-spaced for the fits).
    pub checkpoints: Vec<u64>,
    /// tau_gen: the first checkpoint whose gap (or held-out loss) is within
    /// this relative tolerance of the model's best.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// tau_level: where the gap (or held-out loss) first falls to this
    /// (interpolated in log step); absent: not measured.
    #[serde(default)]
    pub level: Option<f64>,
    /// tau_mem by the losses: where (held-out - training) / held-out first
    /// reaches this.
    #[serde(default = "default_loss_gap")]
    pub loss_gap: f64,
    /// The regression targets, one grid each.
    #[serde(default = "default_targets")]
    pub targets: Vec<Target>,
    /// The grid: its ns, models (the capacities) and seeds (three or more
    /// for intervals); train.steps and train.target are set from above.
    pub sweep: SweepConfig,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_loss_gap() -> f64 {
    0.5
}
fn default_targets() -> Vec<Target> {
    vec![Target::Sample]
}

impl DynamicsConfig {
    /// The grid of `target` (run in OUT/<target>).
    fn sweep_of(&self, target: Target) -> SweepConfig {
        let mut sweep = self.sweep.clone();
        sweep.train.target = target;
        sweep
    }
}

/// One model at one checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct DynamicsPoint {
    pub target: String,
    /// The capacity: the architecture's label.
    pub arch: String,
    pub seed: u64,
    pub n: usize,
    pub step: u64,
    pub memorized: f64,
    /// At the first gap level; absent for data without a true denoiser.
    pub gap_to_truth: Option<f64>,
    pub train_loss: Option<f64>,
    pub heldout_loss: Option<f64>,
}

/// One model's times (None: not reached within the checkpoints).
#[derive(Clone, Debug, Serialize)]
pub struct ModelTimes {
    pub target: String,
    pub arch: String,
    pub seed: u64,
    pub n: usize,
    /// The smallest gap to the truth (or held-out loss) over the checkpoints:
    /// how well it ever generalized.
    pub best: f64,
    pub tau_gen: Option<f64>,
    pub tau_level: Option<f64>,
    pub tau_mem: Option<f64>,
    pub tau_mem_loss: Option<f64>,
}

/// Which time a fit or a band is of.
const TIMES: [&str; 4] = ["tau_gen", "tau_level", "tau_mem", "tau_mem_loss"];

impl ModelTimes {
    fn get(&self, what: &str) -> Option<f64> {
        match what {
            "tau_gen" => self.tau_gen,
            "tau_level" => self.tau_level,
            "tau_mem" => self.tau_mem,
            _ => self.tau_mem_loss,
        }
    }
}

/// A time's geometric mean over seeds at one (target, capacity, N), with
/// its bootstrap interval over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct TimeBand {
    pub target: String,
    pub arch: String,
    pub what: String,
    pub n: usize,
    pub mean: f64,
    pub interval: [f64; 2],
    /// Seeds that reached it, of all.
    pub reached: usize,
    pub seeds: usize,
}

/// tau = a N^alpha over every (N, seed) that reached tau, with alpha's
/// bootstrap interval over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct PowerFit {
    pub target: String,
    pub arch: String,
    pub what: String,
    pub prefactor: f64,
    pub exponent: f64,
    pub interval: [f64; 2],
    pub points: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct DynamicsReport {
    pub gap_sigma: f64,
    pub tolerance: f64,
    pub level: Option<f64>,
    pub loss_gap: f64,
    pub points: Vec<DynamicsPoint>,
    pub times: Vec<ModelTimes>,
    pub bands: Vec<TimeBand>,
    pub fits: Vec<PowerFit>,
}

/// A model's checkpoints in step order.
type Curve<'a> = Vec<&'a DynamicsPoint>;

/// The best gap (or held-out loss), then tau_gen, tau_level, tau_mem and
/// tau_mem by the losses of one model's curve.
fn times_of(curve: &Curve, c: &DynamicsConfig) -> (f64, [Option<f64>; 4]) {
    let series = |value: &dyn Fn(&DynamicsPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        curve
            .iter()
            .filter_map(|p| value(p).map(|v| (p.step as f64, v)))
            .collect()
    };
    // Closeness to the distribution: the gap to the truth, else the held-out loss.
    let quality = match curve.iter().all(|p| p.gap_to_truth.is_some()) {
        true => series(&|p| p.gap_to_truth),
        false => series(&|p| p.heldout_loss),
    };
    let best = quality.iter().map(|q| q.1).fold(f64::INFINITY, f64::min);
    let tau_gen = quality
        .iter()
        .find(|q| q.1 <= (1.0 + c.tolerance) * best)
        .map(|q| q.0);
    // Falling to the level is its negation rising past it.
    let negated: Vec<(f64, f64)> = quality.iter().map(|q| (q.0, -q.1)).collect();
    let tau_level = c.level.and_then(|level| crossing(&negated, -level));
    let tau_mem = crossing(&series(&|p| Some(p.memorized)), 0.5);
    let parted = series(&|p| Some((p.heldout_loss? - p.train_loss?) / p.heldout_loss?));
    let tau_mem_loss = crossing(&parted, c.loss_gap);
    (best, [tau_gen, tau_level, tau_mem, tau_mem_loss])
}

/// Least-squares ln tau = ln a + alpha ln N: (a, alpha).
fn power_fit(points: &[(usize, f64)]) -> Option<(f64, f64)> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .map(|&(n, t)| ((n as f64).ln(), t.ln()))
        .collect();
    let distinct = logs.iter().any(|p| p.0 != logs[0].0);
    let (alpha, ln_a) = least_squares(&logs).filter(|_| distinct)?;
    Some((ln_a.exp(), alpha))
}

impl DynamicsReport {
    fn new(c: &DynamicsConfig, points: Vec<DynamicsPoint>) -> Self {
        let bootstrap = Bootstrap {
            resamples: c.sweep.metrics.resamples,
            seed: 0,
        };
        let mut times = Vec::new();
        for model in distinct(&points, |p| (p.target.clone(), p.arch.clone(), p.n, p.seed)) {
            let curve: Curve = points
                .iter()
                .filter(|p| (p.target.clone(), p.arch.clone(), p.n, p.seed) == model)
                .collect();
            let (best, [tau_gen, tau_level, tau_mem, tau_mem_loss]) = times_of(&curve, c);
            times.push(ModelTimes {
                target: model.0,
                arch: model.1,
                n: model.2,
                seed: model.3,
                best,
                tau_gen,
                tau_level,
                tau_mem,
                tau_mem_loss,
            });
        }
        let seeds = &c.sweep.seeds;
        let (mut bands, mut fits) = (Vec::new(), Vec::new());
        for (target, arch) in distinct(&times, |t| (t.target.clone(), t.arch.clone())) {
            let of: Vec<&ModelTimes> = times
                .iter()
                .filter(|t| t.target == target && t.arch == arch)
                .collect();
            // tau_level only where a level was given.
            for what in TIMES
                .into_iter()
                .filter(|w| *w != "tau_level" || c.level.is_some())
            {
                for n in distinct(&of, |t| t.n) {
                    let logs: Vec<f64> = of
                        .iter()
                        .filter(|t| t.n == n)
                        .filter_map(|t| t.get(what).map(f64::ln))
                        .collect();
                    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
                    bands.push(TimeBand {
                        target: target.clone(),
                        arch: arch.clone(),
                        what: what.into(),
                        n,
                        mean: mean.exp(),
                        interval: bootstrap.interval(&logs).map(f64::exp),
                        reached: logs.len(),
                        seeds: seeds.len(),
                    });
                }
                // Resampling seeds: each drawn seed brings its models at every N.
                let reached = |drawn: &[usize]| -> Vec<(usize, f64)> {
                    drawn
                        .iter()
                        .flat_map(|&k| of.iter().filter(move |t| t.seed == seeds[k]))
                        .filter_map(|t| t.get(what).map(|tau| (t.n, tau)))
                        .collect()
                };
                let all = reached(&(0..seeds.len()).collect::<Vec<_>>());
                if let Some((prefactor, exponent)) = power_fit(&all) {
                    let interval = bootstrap.interval_of(seeds.len(), |drawn| {
                        power_fit(&reached(drawn)).map_or(f64::NAN, |f| f.1)
                    });
                    fits.push(PowerFit {
                        target: target.clone(),
                        arch: arch.clone(),
                        what: what.into(),
                        prefactor,
                        exponent,
                        interval,
                        points: all.len(),
                    });
                }
            }
        }
        DynamicsReport {
            gap_sigma: c.sweep.metrics.gap_sigmas[0],
            tolerance: c.tolerance,
            level: c.level,
            loss_gap: c.loss_gap,
            points,
            times,
            bands,
            fits,
        }
    }

    /// The fits, one line each, and the times of every N.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for f in &self.fits {
            text.push_str(&format!(
                "{} {} {}: {:.3} N^{:.2} (95% interval of the exponent over seeds [{:.2}, {:.2}], {} models)\n",
                f.target, f.arch, f.what, f.prefactor, f.exponent, f.interval[0], f.interval[1], f.points
            ));
        }
        for (target, arch, n) in distinct(&self.times, |t| (t.target.clone(), t.arch.clone(), t.n))
        {
            let best: Vec<f64> = self
                .times
                .iter()
                .filter(|t| t.target == target && t.arch == arch && t.n == n)
                .map(|t| t.best)
                .collect();
            text.push_str(&format!(
                "{target} {arch} N = {n}: best gap (or held-out loss) {:.4}, mean over {} seeds\n",
                best.iter().sum::<f64>() / best.len() as f64,
                best.len()
            ));
        }
        for b in &self.bands {
            text.push_str(&format!(
                "{} {} N = {}: {} {:.0} [{:.0}, {:.0}] ({} of {} seeds)\n",
                b.target,
                b.arch,
                b.n,
                b.what,
                b.mean,
                b.interval[0],
                b.interval[1],
                b.reached,
                b.seeds
            ));
        }
        text
    }

    fn points_csv(&self) -> String {
        let mut csv = String::from(
            "target,arch,seed,n,step,memorized,gap_to_truth,train_loss,heldout_loss\n",
        );
        for p in &self.points {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                p.target,
                p.arch,
                p.seed,
                p.n,
                p.step,
                p.memorized,
                csv_cell(p.gap_to_truth),
                csv_cell(p.train_loss),
                csv_cell(p.heldout_loss)
            ));
        }
        csv
    }

    fn times_csv(&self) -> String {
        let mut csv =
            String::from("target,arch,seed,n,best,tau_gen,tau_level,tau_mem,tau_mem_loss\n");
        for t in &self.times {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                t.target,
                t.arch,
                t.seed,
                t.n,
                t.best,
                csv_cell(t.tau_gen),
                csv_cell(t.tau_level),
                csv_cell(t.tau_mem),
                csv_cell(t.tau_mem_loss)
            ));
        }
        csv
    }

    /// The phase diagram of `target`: per capacity, tau_gen (dashed) and
    /// tau_mem (solid) against N with their bands over seeds.
    fn phase_diagram(&self, target: &str) -> LineChart {
        let mut series = Vec::new();
        let archs = distinct(&self.bands, |b| b.arch.clone());
        for (k, arch) in archs.iter().enumerate() {
            // tau_level in a colour of its own, after the capacities'.
            for (what, dashed, color) in [
                ("tau_gen", true, k),
                ("tau_level", true, k + archs.len()),
                ("tau_mem", false, k),
            ] {
                let of: Vec<&TimeBand> = self
                    .bands
                    .iter()
                    .filter(|b| b.target == target && &b.arch == arch && b.what == what)
                    .filter(|b| b.reached > 0)
                    .collect();
                if of.is_empty() {
                    continue;
                }
                series.push(Series {
                    label: format!("{arch} {what}"),
                    points: of.iter().map(|b| (b.n as f64, b.mean)).collect(),
                    band: of
                        .iter()
                        .filter(|b| b.interval.iter().all(|v| v.is_finite()))
                        .map(|b| (b.n as f64, b.interval[0], b.interval[1]))
                        .collect(),
                    dashed,
                    color,
                });
            }
        }
        LineChart {
            title: format!(
                "{target} target: memorizes above tau_mem (solid); tau_gen, tau_level dashed"
            ),
            x: Axis::new("training-set size N", Scale::Log2),
            y: Axis::new("training step", Scale::Log2),
            series,
            shades: Vec::new(),
        }
    }

    /// Training (solid) and held-out (dashed) losses of `target` and `arch`
    /// against the step, one colour per N, averaged over seeds.
    fn losses(&self, target: &str, arch: &str) -> LineChart {
        let of: Vec<&DynamicsPoint> = self
            .points
            .iter()
            .filter(|p| p.target == target && p.arch == arch)
            .collect();
        let mut series = Vec::new();
        for (k, n) in distinct(&of, |p| p.n).into_iter().enumerate() {
            for (name, dashed) in [("training", false), ("held-out", true)] {
                let value = |p: &DynamicsPoint| match dashed {
                    false => p.train_loss,
                    true => p.heldout_loss,
                };
                let points = distinct(&of, |p| p.step)
                    .into_iter()
                    .filter_map(|step| {
                        let values: Vec<f64> = of
                            .iter()
                            .filter(|p| p.n == n && p.step == step)
                            .filter_map(|p| value(p))
                            .collect();
                        let mean = values.iter().sum::<f64>() / values.len() as f64;
                        mean.is_finite().then_some((step as f64, mean))
                    })
                    .collect();
                series.push(Series {
                    label: format!("N = {n} {name}"),
                    points,
                    dashed,
                    color: k,
                    ..Series::default()
                });
            }
        }
        LineChart {
            title: format!("{arch}, {target} target: training (solid) and held-out (dashed) loss"),
            x: Axis::new("training step", Scale::Log2),
            y: Axis::new("loss on fixed draws (mean over seeds)", Scale::Log10),
            series,
            shades: Vec::new(),
        }
    }
}

/// The distinct values of `key` over `items`, in first-seen order.
fn distinct<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<K> {
    let mut keys: Vec<K> = Vec::new();
    for item in items {
        let k = key(item);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

pub struct Dynamics;

impl Experiment for Dynamics {
    const NAME: &'static str = "dynamics";
    const ABOUT: &'static str =
        "N x capacity x seeds trained through log-spaced steps: tau_gen, tau_mem, their fits in N, the phase diagram";
    type Config = DynamicsConfig;
    type Report = DynamicsReport;

    fn load(path: &Path, options: &RunOptions) -> Result<DynamicsConfig> {
        let mut c: DynamicsConfig = crate::sweep::load_toml(path)?;
        c.sweep = options.with_data(c.sweep, path)?;
        c.sweep.train.steps = last_checkpoint(path, &c.checkpoints)?;
        if c.targets.is_empty() {
            return Err(Error::format(path, "targets: name at least one"));
        }
        for (name, v) in [
            ("tolerance", c.tolerance),
            ("loss_gap", c.loss_gap),
            ("level", c.level.unwrap_or(1.0)),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, v, "must be a finite number > 0"));
            }
        }
        if c.sweep.train.eval_points == 0 {
            return Err(Error::format(
                path,
                "sweep.train.eval_points = 0 leaves no losses to read tau_mem from",
            ));
        }
        Ok(c)
    }

    fn run(c: &DynamicsConfig, options: &RunOptions) -> Result<Option<DynamicsReport>> {
        let root = options.sweep_root(&c.sweep);
        let mut points = Vec::new();
        for &target in &c.targets {
            let sweep = options.prepare_in(c.sweep_of(target), &root.join(target.name()))?;
            for (cell, timeline) in train_cells(&sweep, &c.checkpoints, options)? {
                let Model::Trained { arch, seed, .. } = &cell.model else {
                    continue;
                };
                points.extend(timeline.into_iter().map(|p: TimePoint| DynamicsPoint {
                    target: target.name().into(),
                    arch: arch.label(),
                    seed: *seed,
                    n: p.n,
                    step: p.step,
                    memorized: p.memorized,
                    gap_to_truth: p.gap_to_truth.map(|g| g[0]),
                    train_loss: p.train_loss,
                    heldout_loss: p.heldout_loss,
                }));
            }
        }
        if options.shard.count > 1 {
            eprintln!("shard done; rerun without --shard to draw the figures");
            return Ok(None);
        }
        let report = DynamicsReport::new(c, points);
        print!("{}", report.summary());
        Ok(Some(report))
    }

    fn figure_dir(c: &DynamicsConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep)
    }

    fn figures(report: &DynamicsReport, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join("dynamics.json"), report)?;
        write_atomic(&dir.join("dynamics.csv"), report.points_csv().as_bytes())?;
        write_atomic(&dir.join("times.csv"), report.times_csv().as_bytes())?;
        for target in distinct(&report.points, |p| p.target.clone()) {
            save_figure(
                &dir.join(format!("phase_diagram_{target}")),
                &report.phase_diagram(&target),
            )?;
            for arch in distinct(&report.points, |p| p.arch.clone()) {
                save_figure(
                    &dir.join(format!("losses_{target}_{arch}")),
                    &report.losses(&target, &arch),
                )?;
            }
        }
        eprintln!(
            "wrote dynamics.json, .csv, times.csv and figures to {}",
            dir.display()
        );
        Ok(())
    }
}
