//! Effective rank / n of the denoiser Jacobian dD/dx against sigma (THEORY §7),
//! for trained models in both regimes and for the analytic denoisers: the
//! empirical denoiser of the same training sets and the true MoLRG denoiser.
//! Averaged over noisy points x = y + sigma z with y fresh from the distribution.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use super::{write_outputs, Experiment, RunOptions};
use crate::denoise::Denoiser;
use crate::metrics::{effective_rank, singular_values};
use crate::plot::{Axis, LineChart, Scale, Series};
use crate::sample::initial_noise;
use crate::sweep::{Model, Sweep, SweepConfig};
use crate::Result;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankConfig {
    pub sigmas: Vec<f64>,
    /// Noisy points per sigma.
    pub points: usize,
    /// The sweep that trains the models (its ns pick the regimes).
    pub sweep: SweepConfig,
}

/// One denoiser's (sigma, mean effective rank / n).
#[derive(Clone, Debug, Serialize)]
pub struct RankCurve {
    pub denoiser: String,
    /// The empirical denoiser of a training set (drawn dashed).
    pub empirical: bool,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RankReport {
    pub curves: Vec<RankCurve>,
}

/// Mean effective rank / n of `d`'s Jacobian over `points` noisy points per sigma.
pub fn rank_curve(
    d: &dyn Denoiser,
    sweep: &Sweep,
    sigmas: &[f64],
    points: usize,
) -> Result<Vec<(f64, f64)>> {
    let n = d.dim();
    let y = sweep.fresh.narrow(0, 0, points.min(sweep.fresh.dim(0)?))?;
    let indices: Vec<u64> = (0..y.dim(0)? as u64).collect();
    let (z, _) = initial_noise(
        sweep.config.sampling.seed,
        &indices,
        n,
        DType::F64,
        &Device::Cpu,
    )?;
    sigmas
        .iter()
        .map(|&sigma| {
            let x = (&y + (&z * sigma)?)?;
            let jacobians = d.jacobian(&x, sigma)?;
            let mut total = 0.0;
            for b in 0..indices.len() {
                let s = singular_values(&jacobians.get(b)?)?;
                total += effective_rank(&s, 0.99) as f64 / n as f64;
            }
            Ok((sigma, total / indices.len() as f64))
        })
        .collect()
}

pub struct JacobianRank;

impl Experiment for JacobianRank {
    const NAME: &'static str = "jacobian_rank";
    const ABOUT: &'static str =
        "effective rank / n of dD/dx vs sigma: trained models, empirical and true denoisers";
    type Config = RankConfig;
    type Report = RankReport;

    fn load(path: &Path, options: &RunOptions) -> Result<RankConfig> {
        super::load_without_data(Self::NAME, path, options)
    }

    fn run(c: &RankConfig, options: &RunOptions) -> Result<Option<RankReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        sweep.run(options.shard, options.jobs)?;
        let mut curves = Vec::new();
        if let Some(truth) = &sweep.truth {
            curves.push(RankCurve {
                denoiser: "true MoLRG denoiser".into(),
                empirical: false,
                points: rank_curve(&truth.mixture, &sweep, &c.sigmas, c.points)?,
            });
        }
        for cell in Sweep::grid(&c.sweep) {
            let denoiser = cell.denoiser(&sweep)?.0;
            curves.push(RankCurve {
                denoiser: format!("{} N = {}", cell.model.label(), cell.n),
                empirical: cell.model == Model::Empirical,
                points: rank_curve(&*denoiser, &sweep, &c.sigmas, c.points)?,
            });
        }
        for curve in &curves {
            let rounded: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|p| (p.0, (p.1 * 1000.0).round() / 1000.0))
                .collect();
            println!("{}: {rounded:?}", curve.denoiser);
        }
        Ok(Some(RankReport { curves }))
    }

    fn figure_dir(c: &RankConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep)
    }

    fn figures(report: &RankReport, dir: &Path) -> Result<()> {
        let mut csv = String::from("denoiser,sigma,effective_rank_over_n\n");
        for curve in &report.curves {
            for (sigma, r) in &curve.points {
                csv.push_str(&format!("{},{sigma},{r}\n", curve.denoiser));
            }
        }
        let series = report
            .curves
            .iter()
            .enumerate()
            .map(|(k, curve)| Series {
                dashed: curve.empirical,
                label: curve.denoiser.clone(),
                points: curve.points.clone(),
                color: k,
                ..Series::default()
            })
            .collect();
        let chart = LineChart {
            title: "Jacobian effective rank (99% energy) / n".into(),
            x: Axis::new("noise level sigma", Scale::Log10),
            y: Axis::fixed("effective rank / n", Scale::Linear, (0.0, 1.0)),
            series,
            shades: Vec::new(),
        };
        write_outputs(dir, "jacobian_rank", report, &csv, &chart)
    }
}
