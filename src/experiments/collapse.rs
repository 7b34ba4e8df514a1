//! Collapse onto training points, predicted and measured (THEORY §8): for N
//! points of an isotropic Gaussian in dimension d, the closed form
//! sigma_C = s / sqrt(N^(2/d) - 1), the excess-entropy criterion, the clone
//! test with the empirical denoiser (the level where two clones end on the
//! same training point with probability 1/2) and the median level from which
//! a reverse-SDE trajectory's nearest training point stops changing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{csv_cell, write_outputs, Experiment, RunOptions};
use crate::data::{Spectrum, Synthetic, SyntheticSpec};
use crate::plot::{Axis, LineChart, Scale, Series};
use crate::theory::{
    clone_test, collapse_sigma_entropy, collapse_sigma_isotropic, last_switch_levels, CloneCurve,
};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollapseConfig {
    pub name: String,
    pub dims: Vec<usize>,
    pub ns: Vec<usize>,
    pub std: f64,
    /// Clone pairs and settling trajectories per (d, N).
    pub trajectories: usize,
    /// Levels of the geometric grid from sigma = 80 to 0.01 (then 0).
    pub levels: usize,
    /// Draws of the distribution for the entropy criterion.
    pub entropy_draws: usize,
    #[serde(default)]
    pub seed: u64,
}

/// The four collapse levels of one (d, N).
#[derive(Clone, Debug, Serialize)]
pub struct CollapseRow {
    pub dim: usize,
    pub n: usize,
    pub closed_form: f64,
    pub entropy: Option<f64>,
    pub clone_test: Option<f64>,
    pub settling_median: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CollapseReport {
    pub std: f64,
    pub rows: Vec<CollapseRow>,
}

impl CollapseConfig {
    /// The geometric grid from 80 to 0.01 in `levels` steps, then 0.
    fn sigmas(&self) -> Vec<f64> {
        let (hi, lo) = (80f64.ln(), 0.01f64.ln());
        let mut sigmas: Vec<f64> = (0..self.levels)
            .map(|i| (hi + (lo - hi) * i as f64 / (self.levels - 1) as f64).exp())
            .collect();
        sigmas.push(0.0);
        sigmas
    }

    /// Every N of dimension `d`.
    fn rows(&self, d: usize, sigmas: &[f64]) -> Result<Vec<CollapseRow>> {
        let spec = SyntheticSpec::Gaussian {
            ambient: d,
            spectrum: Spectrum::Isotropic {
                variance: self.std * self.std,
            },
        };
        let dist = Synthetic::new(spec, self.seed)?;
        let draws = dist.sample_fresh(self.entropy_draws)?;
        let mut rows = Vec::new();
        for &n in &self.ns {
            let train = dist.sample(n)?;
            let predicted = collapse_sigma_isotropic(self.std, n as f64, d);
            // Clone at the grid levels within a factor 4 of the prediction.
            let at: Vec<usize> = (0..self.levels)
                .filter(|&i| (sigmas[i] / predicted).ln().abs() < 4f64.ln())
                .collect();
            let curve = clone_test(&train, None, sigmas, &at, self.trajectories, self.seed)?;
            let measured = CloneCurve::level_where(&curve.same_point, &curve.sigmas, 0.5);
            let entropy = collapse_sigma_entropy(&draws, n, self.seed)?;
            let mut settled = last_switch_levels(&train, sigmas, self.trajectories, self.seed)?;
            settled.sort_by(f64::total_cmp);
            let median = settled[settled.len() / 2];
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
            println!(
                "d = {d}, N = {n}: closed form {predicted:.3}, entropy {}, clone test {}, settling median {median:.3}",
                show(entropy),
                show(measured)
            );
            rows.push(CollapseRow {
                dim: d,
                n,
                closed_form: predicted,
                entropy,
                clone_test: measured,
                settling_median: median,
            });
        }
        Ok(rows)
    }
}

pub struct Collapse;

impl Experiment for Collapse {
    const NAME: &'static str = "collapse";
    const ABOUT: &'static str =
        "sigma_C vs N for isotropic Gaussians: closed form, entropy, clone test, settling level";
    // No cells to run in parallel: every core serves the denoiser's GEMMs.
    const PARALLEL_CELLS: bool = false;
    type Config = CollapseConfig;
    type Report = CollapseReport;

    fn load(path: &Path, options: &RunOptions) -> Result<CollapseConfig> {
        let c: CollapseConfig = super::load_without_data(Self::NAME, path, options)?;
        if c.levels < 3 || c.trajectories < 2 || !c.std.is_finite() || c.std <= 0.0 {
            return Err(Error::format(
                path,
                "need levels >= 3, trajectories >= 2 and std > 0",
            ));
        }
        Ok(c)
    }

    fn run(c: &CollapseConfig, _: &RunOptions) -> Result<Option<CollapseReport>> {
        let sigmas = c.sigmas();
        let mut rows = Vec::new();
        for &d in &c.dims {
            rows.extend(c.rows(d, &sigmas)?);
        }
        Ok(Some(CollapseReport { std: c.std, rows }))
    }

    fn figure_dir(c: &CollapseConfig, _: &RunOptions) -> PathBuf {
        Path::new("runs").join(&c.name)
    }

    fn figures(report: &CollapseReport, dir: &Path) -> Result<()> {
        let mut csv = String::from("dim,n,closed_form,entropy,clone_test,settling_median\n");
        for r in &report.rows {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                r.dim,
                r.n,
                r.closed_form,
                csv_cell(r.entropy),
                csv_cell(r.clone_test),
                r.settling_median
            ));
        }
        let mut dims: Vec<usize> = report.rows.iter().map(|r| r.dim).collect();
        dims.dedup();
        let mut series = Vec::new();
        for (k, &d) in dims.iter().enumerate() {
            let rows: Vec<&CollapseRow> = report.rows.iter().filter(|r| r.dim == d).collect();
            let points = |value: fn(&CollapseRow) -> Option<f64>| -> Vec<(f64, f64)> {
                rows.iter()
                    .filter_map(|r| value(r).map(|v| (r.n as f64, v)))
                    .collect()
            };
            let line = |label: String, points, dashed, color| Series {
                label,
                points,
                dashed,
                color,
                ..Series::default()
            };
            series.extend([
                line(
                    format!("d = {d}: closed form (dashed)"),
                    points(|r| Some(r.closed_form)),
                    true,
                    k,
                ),
                line(
                    format!("d = {d}: clone test"),
                    points(|r| r.clone_test),
                    false,
                    k,
                ),
                line(
                    format!("d = {d}: excess entropy"),
                    points(|r| r.entropy),
                    false,
                    k + dims.len(),
                ),
            ]);
        }
        let chart = LineChart {
            title: format!(
                "collapse level sigma_C, N points of N(0, {}^2 I)",
                report.std
            ),
            x: Axis::new("training-set size N", Scale::Log2),
            y: Axis::new("sigma_C", Scale::Log10),
            series,
            shades: Vec::new(),
        };
        write_outputs(dir, "collapse", report, &csv, &chart)
    }
}
