//! Reproducibility of inverse-problem solutions across N (THEORY §11): the
//! sweep's trained models each reconstruct the same measurements of fresh
//! points from the same noise with each solver (DPS, range-null
//! projection); at each N the experiment scores RP between the models, RP
//! of each against the exact memorizing solution (the empirical prior's
//! posterior sampled from the same noise) and against the same solver
//! around the true denoiser, and GL of each (1 - the d1/d2 < 1/3
//! memorized fraction, as the sweep scores samples).

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::scored::{csv_rows, curves_chart, score_outputs, References, ScoredPoint};
use super::{Experiment, RunOptions};
use crate::denoise::Denoiser;
use crate::inverse::{solve, EmpiricalPosterior, Operator, OperatorSpec, Problems, Solver};
use crate::io::{write_atomic, write_json};
use crate::plot::{save_figure, Series};
use crate::sample::{sample, Method};
use crate::sweep::{Model, Sweep, SweepConfig};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverseConfig {
    /// The operators, as `regimes solve --operator` names them.
    pub operators: Vec<OperatorSpec>,
    /// Fresh points measured (the sweep's first fresh rows).
    pub measurements: usize,
    /// Noises per measurement: z_0 .. z_(seeds - 1) of the sampling seed.
    pub seeds: u64,
    pub noise_y: f64,
    /// The solvers, as `regimes solve --solver` names them (default: dps).
    #[serde(default = "dps_only")]
    pub solvers: Vec<String>,
    /// DPS's step for the trained models and the true denoiser.
    pub zeta: f64,
    /// The sweep that trains the models (at least two per N for RP between them).
    pub sweep: SweepConfig,
}

/// One operator and solver: the scores at every N.
#[derive(Clone, Debug, Serialize)]
pub struct OperatorCurves {
    pub operator: String,
    pub solver: String,
    /// Scores of the whole reconstructions.
    pub points: Vec<ScoredPoint>,
    /// The same scores of their unmeasured parts (I - A^+ A) x, against the
    /// references' and the training points' unmeasured parts: what the
    /// measurement leaves to the prior, where a solver that keeps the
    /// measurement (projection) can still differ.
    pub unmeasured: Vec<ScoredPoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InverseReport {
    pub similarity: String,
    pub threshold: f64,
    pub operators: Vec<OperatorCurves>,
}

pub struct InverseProblems;

impl Experiment for InverseProblems {
    const NAME: &'static str = "inverse_problems";
    const ABOUT: &'static str =
        "RP of DPS and projection reconstructions between models, against the memorizing posterior, vs N";
    type Config = InverseConfig;
    type Report = InverseReport;

    fn load(path: &Path, options: &RunOptions) -> Result<InverseConfig> {
        let mut config: InverseConfig = super::load_toml(path)?;
        config.sweep = options.with_data(config.sweep, path)?;
        let trained = config.sweep.models.len() * config.sweep.seeds.len();
        if trained < 2 || config.measurements == 0 || config.seeds == 0 {
            return Err(Error::format(
                path,
                "needs at least two trained models per N, one measurement and one seed",
            ));
        }
        for name in &config.solvers {
            name.parse::<Solver>().map_err(|e| Error::at(path, e))?;
        }
        Ok(config)
    }

    fn run(c: &InverseConfig, options: &RunOptions) -> Result<Option<InverseReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        sweep.run(options.shard, options.jobs)?;
        let metrics = &c.sweep.metrics;
        let mut operators = Vec::new();
        for spec in &c.operators {
            let a = Operator::new(spec, sweep.sample_shape())?;
            for name in &c.solvers {
                let solver = match name.parse()? {
                    Solver::Dps { .. } => Solver::Dps { zeta: c.zeta },
                    other => other,
                };
                let (points, unmeasured) = c
                    .sweep
                    .ns
                    .iter()
                    .map(|&n| score_at(c, &sweep, &a, solver, n))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .unzip();
                operators.push(OperatorCurves {
                    operator: spec.to_string(),
                    solver: name.clone(),
                    points,
                    unmeasured,
                });
            }
        }
        for curves in &operators {
            for p in &curves.points {
                println!(
                    "{} {} N = {}: RP between models {:.3}, vs memorizing {}",
                    curves.operator,
                    curves.solver,
                    p.n,
                    p.rp_between_models.value,
                    p.models
                        .iter()
                        .map(|m| format!("{:.3}", m.rp_vs_memorizing.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(Some(InverseReport {
            similarity: metrics.rp_similarity.name().into(),
            threshold: metrics.rp_threshold,
            operators,
        }))
    }

    fn figure_dir(c: &InverseConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep)
    }

    fn figures(report: &InverseReport, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join("inverse_problems.json"), report)?;
        let mut csv = String::from(
            "operator,solver,part,n,model,rp_between_models,rp_vs_memorizing,rp_vs_truth,generalization\n",
        );
        for (k, curves) in report.operators.iter().enumerate() {
            let (operator, solver) = (curves.operator.as_str(), curves.solver.as_str());
            csv.push_str(&csv_rows(&[operator, solver, "whole"], &curves.points));
            let unmeasured = &curves.unmeasured;
            csv.push_str(&csv_rows(&[operator, solver, "unmeasured"], unmeasured));
            let title = format!(
                "{} reconstructions, {} ({} > {})",
                curves.solver, curves.operator, report.similarity, report.threshold
            );
            let truth = format!("{} with the true denoiser", curves.solver);
            let references = ("memorizing posterior", truth.as_str());
            let mut chart = curves_chart(title, &curves.points, references);
            chart.series.push(Series {
                label: "RP between models, unmeasured part (I - A^+ A) x".into(),
                points: curves
                    .unmeasured
                    .iter()
                    .map(|p| (p.n as f64, p.rp_between_models.value))
                    .collect(),
                dashed: true,
                color: 0,
                ..Series::default()
            });
            save_figure(&dir.join(format!("inverse_problems_{k}")), &chart)?;
        }
        write_atomic(&dir.join("inverse_problems.csv"), csv.as_bytes())?;
        eprintln!(
            "wrote inverse_problems.json, .csv and figures to {}",
            dir.display()
        );
        Ok(())
    }
}

/// Every trained model's reconstructions by `solver` at N, against each
/// other and against the exact memorizing posterior and the true denoiser's:
/// the whole reconstructions, and their unmeasured parts.
fn score_at(
    c: &InverseConfig,
    sweep: &Sweep,
    a: &Operator,
    solver: Solver,
    n: usize,
) -> Result<(ScoredPoint, ScoredPoint)> {
    let count = c.measurements.min(sweep.fresh.dim(0)?);
    let clean = sweep
        .fresh
        .narrow(0, 0, count)?
        .flatten_from(1)?
        .to_dtype(DType::F64)?;
    let seed = c.sweep.sampling.seed;
    let indices: Vec<u64> = (0..c.seeds).collect();
    let schedule = &c.sweep.sampling.schedule;
    let Problems { y, x, .. } =
        Problems::new(a, &clean, c.noise_y, seed, &indices, schedule.sigma_max)?;
    let sigmas = schedule.sigmas()?;
    let reconstruct = |d: &dyn Denoiser, dtype: DType| -> Result<Tensor> {
        let out = solve(
            d,
            a,
            &y.to_dtype(dtype)?,
            solver,
            &x.to_dtype(dtype)?,
            &sigmas,
        )?;
        Ok(out.to_dtype(DType::F64)?)
    };
    let train = sweep
        .training_set(n)?
        .flatten_from(1)?
        .to_dtype(DType::F64)?;
    let posterior = EmpiricalPosterior::new(&train, a, &y, c.noise_y)?;
    let memorizing = sample(&posterior, &x, &sigmas, &Method::Euler, &mut [], None)?;
    let truth = match &sweep.truth {
        Some(t) => Some(reconstruct(&t.mixture, DType::F64)?),
        None => None,
    };
    let outputs = Sweep::grid(&c.sweep)
        .into_iter()
        .filter(|cell| cell.n == n && cell.model != Model::Empirical)
        .map(|cell| {
            let (d, dtype) = cell.denoiser(sweep)?;
            Ok((cell.model.label(), reconstruct(&*d, dtype)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let references = References {
        memorizing: &memorizing,
        truth: truth.as_ref(),
        train: &train,
    };
    let whole = score_outputs(n, &outputs, &references, &c.sweep.metrics, seed)?;
    let hidden = |x: &Tensor| a.unmeasured(x);
    let outputs = outputs
        .iter()
        .map(|(label, x)| Ok((label.clone(), hidden(x)?)))
        .collect::<Result<Vec<_>>>()?;
    let (memorizing, train) = (hidden(&memorizing)?, hidden(&train)?);
    let truth = truth.as_ref().map(hidden).transpose()?;
    let references = References {
        memorizing: &memorizing,
        truth: truth.as_ref(),
        train: &train,
    };
    let unmeasured = score_outputs(n, &outputs, &references, &c.sweep.metrics, seed)?;
    Ok((whole, unmeasured))
}

fn dps_only() -> Vec<String> {
    vec!["dps".into()]
}
