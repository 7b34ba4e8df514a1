//! Does the memorization-generalization transition on MoLRG data scale with
//! the intrinsic dimension d_k and not with the ambient dimension n
//! (THEORY §8)? One sweep per (d_k, n) at N_k / d_k = the configured ratios,
//! then the generalization score against N_k / d_k.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_outputs, Experiment, RunOptions};
use crate::data::SyntheticSpec;
use crate::metrics::crossing;
use crate::nn::Arch;
use crate::plot::{Axis, LineChart, Scale, Series};
use crate::sweep::{
    run_sweep, write_sweep, DataSource, Estimate, MetricSettings, SamplingSettings, Split,
    SweepConfig, TrainSettings,
};
use crate::Result;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    pub name: String,
    /// Intrinsic dimensions d_k (every component has the same).
    pub ranks: Vec<usize>,
    /// Ambient dimensions n.
    pub ambients: Vec<usize>,
    pub components: usize,
    /// N_k / d_k; N = ratio * K * d_k.
    pub ratios: Vec<f64>,
    pub model: Arch,
    pub train: TrainSettings,
    pub sampling: SamplingSettings,
    pub metrics: MetricSettings,
}

/// The generalization curve of one (d_k, n).
#[derive(Clone, Debug, Serialize)]
pub struct ThresholdCurve {
    pub rank: usize,
    pub ambient: usize,
    /// Per N: N, N_k / d_k and the generalization score.
    pub cells: Vec<(usize, f64, Estimate)>,
    /// N_k / d_k where the score crosses 0.5.
    pub ratio_star: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ThresholdReport {
    pub ranks: Vec<usize>,
    pub ambients: Vec<usize>,
    pub curves: Vec<ThresholdCurve>,
}

impl ThresholdCurve {
    /// (N_k / d_k, generalization score), in ratio order.
    fn points(&self) -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = self.cells.iter().map(|c| (c.1, c.2.value)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    }
}

impl ThresholdConfig {
    /// The sweep of one (d_k, n): the configured model at every ratio.
    pub fn sweep_config(&self, rank: usize, ambient: usize) -> SweepConfig {
        let ns = self
            .ratios
            .iter()
            .map(|r| ((r * (self.components * rank) as f64).round() as usize).max(1))
            .collect();
        SweepConfig {
            name: format!("d{rank}-n{ambient}"),
            data: DataSource {
                synthetic: Some(SyntheticSpec::Molrg {
                    ambient,
                    ranks: vec![rank; self.components],
                    floor: 0.0,
                }),
                file: None,
                import: None,
                labels: None,
                classes: None,
                seed: 0,
                rows: None,
                shape: None,
            },
            ns,
            subset_seed: 0,
            models: vec![self.model.clone().into()],
            split: Split::Nested,
            seeds: vec![0],
            train: self.train.clone(),
            sampling: self.sampling.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Runs the sweep of (d_k, n) in `out`; its curve once it is finished.
    fn curve(
        &self,
        rank: usize,
        ambient: usize,
        out: &Path,
        options: &RunOptions,
    ) -> Result<Option<ThresholdCurve>> {
        let config = self.sweep_config(rank, ambient);
        let root = out.join(&config.name);
        let options = RunOptions {
            out: Some(root.clone()),
            ..options.clone()
        };
        let Some(finished) = run_sweep(&options.prepare(config)?, &options)? else {
            return Ok(None);
        };
        write_sweep(&finished, &root, &[])?;
        let results = &finished.results;
        let per_dim = (self.components * rank) as f64;
        let label = &results.trained()[0];
        let cells: Vec<(usize, f64, Estimate)> = results
            .cells
            .iter()
            .filter(|cell| &cell.label == label)
            .map(|cell| {
                (
                    cell.cell.n,
                    cell.cell.n as f64 / per_dim,
                    cell.generalization,
                )
            })
            .collect();
        let mut curve = ThresholdCurve {
            rank,
            ambient,
            cells,
            ratio_star: None,
        };
        curve.ratio_star = crossing(&curve.points(), 0.5);
        let star = curve
            .ratio_star
            .map_or("none".into(), |r| format!("{r:.2}"));
        println!("d_k = {rank}, n = {ambient}: GL crosses 0.5 at N_k/d_k = {star}");
        Ok(Some(curve))
    }
}

pub struct MolrgThreshold;

impl Experiment for MolrgThreshold {
    const NAME: &'static str = "molrg_threshold";
    const ABOUT: &'static str =
        "MoLRG: generalization vs N_k / d_k for several d_k and two ambient dimensions";
    type Config = ThresholdConfig;
    type Report = ThresholdReport;

    fn load(path: &Path, options: &RunOptions) -> Result<ThresholdConfig> {
        super::load_without_data(Self::NAME, path, options)
    }

    fn run(c: &ThresholdConfig, options: &RunOptions) -> Result<Option<ThresholdReport>> {
        let out = options.out_or_runs(&c.name);
        let mut curves = Vec::new();
        let mut complete = true;
        for &rank in &c.ranks {
            for &ambient in &c.ambients {
                match c.curve(rank, ambient, &out, options)? {
                    Some(curve) => curves.push(curve),
                    None => complete = false,
                }
            }
        }
        Ok(complete.then(|| ThresholdReport {
            ranks: c.ranks.clone(),
            ambients: c.ambients.clone(),
            curves,
        }))
    }

    fn figure_dir(c: &ThresholdConfig, options: &RunOptions) -> PathBuf {
        options.out_or_runs(&c.name)
    }

    fn figures(report: &ThresholdReport, dir: &Path) -> Result<()> {
        let mut csv = String::from("rank,ambient,n,ratio,generalization,ci_low,ci_high\n");
        let mut series = Vec::new();
        for curve in &report.curves {
            let (rank, ambient) = (curve.rank, curve.ambient);
            for (n, ratio, g) in &curve.cells {
                csv.push_str(&format!(
                    "{rank},{ambient},{n},{ratio},{},{},{}\n",
                    g.value, g.ci95[0], g.ci95[1]
                ));
            }
            let points = curve.points();
            let dashed = ambient != report.ambients[0];
            series.push(Series {
                label: format!(
                    "d_k = {rank}, n = {ambient}{}",
                    if dashed { " (dashed)" } else { "" }
                ),
                points,
                dashed,
                color: report.ranks.iter().position(|&r| r == rank).unwrap_or(0),
                ..Series::default()
            });
        }
        let chart = LineChart {
            title: "MoLRG: generalization vs samples per intrinsic dimension".into(),
            x: Axis::new(
                "N_k / d_k (training points per component / its dimension)",
                Scale::Log2,
            ),
            y: Axis::fixed("generalization score", Scale::Linear, (0.0, 1.0)),
            series,
            shades: Vec::new(),
        };
        write_outputs(dir, "molrg_threshold", report, &csv, &chart)
    }
}
