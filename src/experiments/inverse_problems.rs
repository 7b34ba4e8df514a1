//! Reproducibility of inverse-problem solutions across N (THEORY §11): the
//! sweep's trained models each reconstruct the same measurements of fresh
//! points from the same noise with DPS; at each N the experiment scores RP
//! between the models, RP of each against the exact memorizing solution
//! (the empirical prior's posterior sampled from the same noise) and against
//! DPS with the true denoiser, and GL of each (1 - the d1/d2 < 1/3
//! memorized fraction, as the sweep scores samples).

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::{csv_cell, Experiment, RunOptions};
use crate::denoise::Denoiser;
use crate::experiment::{Estimate, Model, Sweep, SweepConfig};
use crate::inverse::{solve, EmpiricalPosterior, Operator, OperatorSpec, Problems, Solver};
use crate::io::{write_atomic, write_json};
use crate::metrics::{ratio_memorization, reproducibility, Bootstrap};
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sample::{sample, Method};
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
    /// DPS's step for the trained models and the true denoiser.
    pub zeta: f64,
    /// The sweep that trains the models (at least two per N for RP between them).
    pub sweep: SweepConfig,
}

/// One model's scores at one N and operator.
#[derive(Clone, Debug, Serialize)]
pub struct ModelScores {
    pub model: String,
    pub rp_vs_memorizing: Estimate,
    pub rp_vs_truth: Option<Estimate>,
    pub generalization: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct InversePoint {
    pub n: usize,
    /// RP between the first two models' reconstructions.
    pub rp_between_models: Estimate,
    pub models: Vec<ModelScores>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OperatorCurves {
    pub operator: String,
    pub points: Vec<InversePoint>,
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
        "RP of DPS reconstructions between models, against the memorizing posterior, vs N";
    type Config = InverseConfig;
    type Report = InverseReport;

    fn load(path: &Path, options: &RunOptions) -> Result<InverseConfig> {
        let config: InverseConfig = super::load_without_data(Self::NAME, path, options)?;
        let trained = config.sweep.models.len() * config.sweep.seeds.len();
        if trained < 2 || config.measurements == 0 || config.seeds == 0 {
            return Err(Error::format(
                path,
                "needs at least two trained models per N, one measurement and one seed",
            ));
        }
        Ok(config)
    }

    fn run(c: &InverseConfig, options: &RunOptions) -> Result<Option<InverseReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        sweep.run(options.shard, options.jobs)?;
        let metrics = &c.sweep.metrics;
        let operators = c
            .operators
            .iter()
            .map(|spec| {
                let shape = &sweep.fresh.dims()[1..];
                let a = Operator::new(spec, shape)?;
                let points = c
                    .sweep
                    .ns
                    .iter()
                    .map(|&n| score_at(c, &sweep, &a, n))
                    .collect::<Result<_>>()?;
                Ok(OperatorCurves {
                    operator: spec.to_string(),
                    points,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for curves in &operators {
            for p in &curves.points {
                println!(
                    "{} N = {}: RP between models {:.3}, vs memorizing {}",
                    curves.operator,
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
            "operator,n,model,rp_between_models,rp_vs_memorizing,rp_vs_truth,generalization\n",
        );
        for (k, curves) in report.operators.iter().enumerate() {
            for p in &curves.points {
                for m in &p.models {
                    // Quoted: operators such as project:8,0 hold a comma.
                    csv.push_str(&format!(
                        "\"{}\",{},{},{},{},{},{}\n",
                        curves.operator,
                        p.n,
                        m.model,
                        p.rp_between_models.value,
                        m.rp_vs_memorizing.value,
                        csv_cell(m.rp_vs_truth.map(|e| e.value)),
                        m.generalization.value
                    ));
                }
            }
            let name = format!("inverse_problems_{k}");
            save_figure(&dir.join(name), &chart(report, curves))?;
        }
        write_atomic(&dir.join("inverse_problems.csv"), csv.as_bytes())?;
        eprintln!(
            "wrote inverse_problems.json, .csv and figures to {}",
            dir.display()
        );
        Ok(())
    }
}

/// Every trained model's DPS reconstructions at N, against each other and
/// against the exact memorizing posterior and the true denoiser's DPS.
fn score_at(c: &InverseConfig, sweep: &Sweep, a: &Operator, n: usize) -> Result<InversePoint> {
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
    let dps = Solver::Dps { zeta: c.zeta };
    let reconstruct = |d: &dyn Denoiser, dtype: DType| -> Result<Tensor> {
        let out = solve(d, a, &y.to_dtype(dtype)?, dps, &x.to_dtype(dtype)?, &sigmas)?;
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
    let metrics = &c.sweep.metrics;
    let bootstrap = Bootstrap {
        resamples: metrics.resamples,
        seed,
    };
    let rp = |p: &Tensor, q: &Tensor| -> Result<Estimate> {
        let s = reproducibility(
            p,
            q,
            metrics.rp_similarity,
            metrics.rp_threshold,
            "raw",
            bootstrap,
        )?;
        Ok(Estimate::from(&s))
    };
    let mut reconstructions = Vec::new();
    let mut models = Vec::new();
    for cell in Sweep::grid(&c.sweep).into_iter().filter(|c| c.n == n) {
        if cell.model == Model::Empirical {
            continue;
        }
        let (d, dtype) = cell.denoiser(sweep)?;
        let r = reconstruct(&*d, dtype)?;
        let memorized = ratio_memorization(&r, &train, "raw", bootstrap)?;
        models.push(ModelScores {
            model: cell.model.label(),
            rp_vs_memorizing: rp(&r, &memorizing)?,
            rp_vs_truth: truth.as_ref().map(|t| rp(&r, t)).transpose()?,
            generalization: Estimate::from(&memorized.complement("generalization")),
        });
        reconstructions.push(r);
    }
    Ok(InversePoint {
        n,
        rp_between_models: rp(&reconstructions[0], &reconstructions[1])?,
        models,
    })
}

fn chart(report: &InverseReport, curves: &OperatorCurves) -> LineChart {
    let along = |f: &dyn Fn(&InversePoint) -> Option<Estimate>| -> Vec<(f64, f64)> {
        curves
            .points
            .iter()
            .filter_map(|p| f(p).map(|e| (p.n as f64, e.value)))
            .collect()
    };
    let mut series = vec![Series {
        label: "RP between models".into(),
        points: along(&|p| Some(p.rp_between_models)),
        color: 0,
        ..Series::default()
    }];
    let labels: Vec<String> = curves.points[0]
        .models
        .iter()
        .map(|m| m.model.clone())
        .collect();
    for (k, label) in labels.iter().enumerate() {
        let model = |p: &InversePoint| p.models[k].clone();
        series.push(Series {
            label: format!("{label}: RP vs memorizing posterior"),
            points: along(&|p| Some(model(p).rp_vs_memorizing)),
            dashed: true,
            color: 1 + k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("{label}: RP vs DPS with the true denoiser"),
            points: along(&|p| model(p).rp_vs_truth),
            color: 1 + k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("{label}: GL"),
            points: along(&|p| Some(model(p).generalization)),
            dashed: true,
            color: 3 + labels.len() + k,
            ..Series::default()
        });
    }
    LineChart {
        title: format!(
            "DPS reconstructions, {} ({} > {})",
            curves.operator, report.similarity, report.threshold
        ),
        x: Axis::new("training-set size N", Scale::Log2),
        y: Axis::fixed("score", Scale::Linear, (0.0, 1.0)),
        series,
        shades: Vec::new(),
    }
}
