//! Boundaries of trained models against the theory (THEORY §8), from a regime
//! sweep: the N* where each model's generalization score passes 0.5, with a
//! bootstrap interval (samples resampled within each N), and per N the noise
//! level where the model's gap to the memorizing denoiser and its gap to the
//! true one cross, drawn against the collapse level sigma_C(N) of the
//! excess-entropy criterion.

use std::path::{Path, PathBuf};

use candle_core::DType;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{csv_cell, load_without_data, write_outputs, Experiment, RunOptions};
use crate::data::npy::read_npy;
use crate::data::FRESH_ROWS;
use crate::metrics::{crossing, nearest_two, quantile, sign_change, DEFAULT_CHUNK};
use crate::plot::{Axis, LineChart, Scale, Series};
use crate::rng::{stream, Purpose};
use crate::sweep::{run_sweep, write_sweep, CellResult, Results, Sweep, SweepConfig};
use crate::theory::collapse_sigma_entropy;
use crate::Result;

/// boundaries.toml as written: the sweep it analyses named by its config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoundaryFile {
    sweep: PathBuf,
    resamples: usize,
    entropy_draws: usize,
    #[serde(default)]
    seed: u64,
}

/// The checked config: the sweep config read and validated once.
#[derive(Clone, Debug)]
pub struct BoundaryConfig {
    /// The sweep whose models are analysed (run first if unfinished).
    pub sweep: SweepConfig,
    pub resamples: usize,
    /// Draws of the synthetic distribution for the entropy criterion.
    pub entropy_draws: usize,
    pub seed: u64,
}

/// One trained model at one N.
#[derive(Clone, Debug, Serialize)]
pub struct BoundaryRow {
    pub model: String,
    pub n: usize,
    pub generalization: f64,
    pub sigma_gap_crossing: Option<f64>,
    pub sigma_c_entropy: Option<f64>,
}

/// One trained model's N* with its bootstrap interval.
#[derive(Clone, Debug, Serialize)]
pub struct NStar {
    pub model: String,
    pub n_star: Option<f64>,
    /// The 2.5% and 97.5% quantiles of the resampled N*.
    pub interval: [Option<f64>; 2],
    /// Resamples whose curve crosses 0.5, of `resamples`.
    pub crossing_resamples: usize,
    pub resamples: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct BoundaryReport {
    pub rows: Vec<BoundaryRow>,
    pub n_stars: Vec<NStar>,
    /// (N, sigma_C) of the excess-entropy criterion.
    pub predicted: Vec<(f64, f64)>,
    /// Per trained model, (N, sigma where its two gaps are equal).
    pub gap_crossings: Vec<(String, Vec<(f64, f64)>)>,
}

/// The noise level where ln(gap to empirical / gap to truth) changes sign,
/// the first from the smallest sigma, interpolated in ln sigma.
pub fn gap_crossing(cell: &CellResult) -> Option<f64> {
    let truth = cell.gap_to_truth.as_ref()?;
    let mut points: Vec<(f64, f64)> = cell
        .gap_sigmas
        .iter()
        .zip(cell.gap_to_empirical.iter().zip(truth))
        .map(|(&s, (&e, &t))| (s, (e / t).ln()))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    sign_change(&points)
}

/// The generalization score of per-sample memorization flags.
fn generalization(flags: &[bool]) -> f64 {
    1.0 - flags.iter().filter(|&&m| m).count() as f64 / flags.len() as f64
}

/// N* of the flags per N, and of `resamples` bootstrap draws (samples
/// resampled within each N, from stream (seed, Bootstrap, 1)).
fn n_star(model: &str, flags: &[(f64, Vec<bool>)], resamples: usize, seed: u64) -> NStar {
    let curve: Vec<(f64, f64)> = flags.iter().map(|(n, f)| (*n, generalization(f))).collect();
    let mut rng = stream(seed, Purpose::Bootstrap, 1);
    let mut stars: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let resampled: Vec<(f64, f64)> = flags
                .iter()
                .map(|(n, f)| {
                    let draw: Vec<bool> =
                        (0..f.len()).map(|_| f[rng.gen_range(0..f.len())]).collect();
                    (*n, generalization(&draw))
                })
                .collect();
            crossing(&resampled, 0.5)
        })
        .collect();
    stars.sort_by(f64::total_cmp);
    NStar {
        model: model.to_string(),
        n_star: crossing(&curve, 0.5),
        interval: [quantile(&stars, 0.025), quantile(&stars, 0.975)],
        crossing_resamples: stars.len(),
        resamples,
    }
}

/// Every trained model's rows, N* and gap crossings.
fn analyse(
    config: &BoundaryConfig,
    sweep: &Sweep,
    results: &Results,
    predicted: &[(f64, f64)],
) -> Result<BoundaryReport> {
    let mut ns = sweep.config.ns.clone();
    ns.sort_unstable();
    let mut report = BoundaryReport {
        rows: Vec::new(),
        n_stars: Vec::new(),
        predicted: predicted.to_vec(),
        gap_crossings: Vec::new(),
    };
    for model in results.trained() {
        // Per-sample memorization flags of every N, recomputed from the samples.
        let mut flags = Vec::new();
        let mut crossings = Vec::new();
        for &n in &ns {
            let cell = results
                .cells
                .iter()
                .find(|r| r.cell.n == n && r.label == model);
            let Some(cell) = cell else { continue };
            let samples = read_npy(&cell.cell.dir(&sweep.root).join("samples.npy"))?;
            let train = sweep
                .training_set(n)?
                .flatten_from(1)?
                .to_dtype(DType::F32)?;
            let memorized = nearest_two(&samples, &train, DEFAULT_CHUNK)?.ratio_memorized();
            flags.push((n as f64, memorized));
            let sigma_gap_crossing = gap_crossing(cell);
            crossings.extend(sigma_gap_crossing.map(|s| (n as f64, s)));
            report.rows.push(BoundaryRow {
                model: model.clone(),
                n,
                generalization: cell.generalization.value,
                sigma_gap_crossing,
                sigma_c_entropy: predicted.iter().find(|p| p.0 == n as f64).map(|p| p.1),
            });
        }
        report
            .n_stars
            .push(n_star(&model, &flags, config.resamples, config.seed));
        report.gap_crossings.push((model, crossings));
    }
    Ok(report)
}

pub struct Boundaries;

impl Experiment for Boundaries {
    const NAME: &'static str = "boundaries";
    const ABOUT: &'static str =
        "N* per model with a bootstrap interval, and where its gaps cross, against sigma_C(N)";
    type Config = BoundaryConfig;
    type Report = BoundaryReport;

    fn load(path: &Path, options: &RunOptions) -> Result<BoundaryConfig> {
        let file: BoundaryFile = load_without_data(Self::NAME, path, options)?;
        Ok(BoundaryConfig {
            sweep: SweepConfig::load(&file.sweep)?,
            resamples: file.resamples,
            entropy_draws: file.entropy_draws,
            seed: file.seed,
        })
    }

    fn run(c: &BoundaryConfig, options: &RunOptions) -> Result<Option<BoundaryReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        let Some(finished) = run_sweep(&sweep, options)? else {
            return Ok(None);
        };
        write_sweep(&finished, &sweep.root, &[])?;
        // Predicted collapse level per N from draws of the distribution.
        let mut predicted = Vec::new();
        if let Some(truth) = &sweep.truth {
            // Past the fresh rows the gap points use, so the two sets never share a draw.
            let draws = truth.sample_rows(2 * FRESH_ROWS, c.entropy_draws)?;
            let mut ns = sweep.config.ns.clone();
            ns.sort_unstable();
            for n in ns {
                predicted.extend(collapse_sigma_entropy(&draws, n, c.seed)?.map(|s| (n as f64, s)));
            }
        }
        let report = analyse(c, &sweep, &finished.results, &predicted)?;
        let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        for star in &report.n_stars {
            println!(
                "{}: N* = {} (bootstrap 95% interval {} - {}, {} of {} resamples cross)",
                star.model,
                show(star.n_star),
                show(star.interval[0]),
                show(star.interval[1]),
                star.crossing_resamples,
                star.resamples
            );
        }
        Ok(Some(report))
    }

    fn figure_dir(c: &BoundaryConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep).join("boundaries")
    }

    fn figures(report: &BoundaryReport, dir: &Path) -> Result<()> {
        let mut csv = String::from("model,n,generalization,sigma_gap_crossing,sigma_c_entropy\n");
        for row in &report.rows {
            csv.push_str(&format!(
                "{},{},{},{},{}\n",
                row.model,
                row.n,
                row.generalization,
                csv_cell(row.sigma_gap_crossing),
                csv_cell(row.sigma_c_entropy)
            ));
        }
        let mut series = vec![Series {
            label: "sigma_C (excess entropy)".into(),
            points: report.predicted.clone(),
            dashed: true,
            color: 6,
            ..Series::default()
        }];
        for (k, (model, points)) in report.gap_crossings.iter().enumerate() {
            series.push(Series {
                label: format!("{model}: gaps to empirical and truth equal"),
                points: points.clone(),
                color: k,
                ..Series::default()
            });
        }
        let chart = LineChart {
            title: "where trained models switch between the memorizing and the true denoiser"
                .into(),
            x: Axis::new("training-set size N", Scale::Log2),
            y: Axis::new("noise level sigma", Scale::Log10),
            series,
            shades: Vec::new(),
        };
        write_outputs(dir, "boundaries", report, &csv, &chart)
    }
}
