//! Fine-tuning (the paper's Appendix G; THEORY §14): base models pretrained on a source
//! distribution S, then fine-tuned on nested target sets of size N from a
//! target T, beside the same models trained from scratch on the same sets,
//! all sampled from the same noise. Per N: RP between the fine-tuned copies
//! of different bases, RP between fine-tuned and from-scratch models, GL and
//! RP against the target set's memorizing denoiser, the fraction of samples
//! nearer S than T, and the denoiser gaps; N* of each.
//!
//! Three sweeps share the target config: `base` (the bases: one N, one cell
//! per base seed, on S), `scratch` (the target sweep as written) and one
//! `from-base-sK` per base seed (the target sweep with `train.init` = base
//! K's run). Each keeps its cells, resume, shards and budget check.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::{Experiment, RunOptions};
use crate::data::npy::read_npy;
use crate::io::write_atomic;
use crate::metrics::nearest_two;
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sweep::{
    run_sweep, write_sweep, Cell, CellResult, DataSource, Estimate, Model, Results, Sweep,
    SweepConfig, SweepReport, TrainSettings, SAMPLES_FILE,
};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuningConfig {
    /// The target sweep (one model): T's data, the Ns, the fine-tuning
    /// budget (with its budget check), sampling and metrics.
    pub sweep: SweepConfig,
    pub base: BaseConfig,
}

/// The base models: trained on S, once per seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    pub data: DataSource,
    /// N_S, the source training-set size.
    pub n: usize,
    pub steps: u64,
    /// Two or more, so fine-tuned copies of different bases can be compared.
    pub seeds: Vec<u64>,
}

impl FinetuningConfig {
    fn base_sweep(&self) -> SweepConfig {
        SweepConfig {
            name: format!("{}-base", self.sweep.name),
            data: self.base.data.clone(),
            ns: vec![self.base.n],
            seeds: self.base.seeds.clone(),
            train: TrainSettings {
                steps: self.base.steps,
                budgets: Vec::new(),
                init: None,
                ..self.sweep.train.clone()
            },
            ..self.sweep.clone()
        }
    }

    /// The target sweep fine-tuned from the base of `seed` (in `base_root`).
    fn finetuned_sweep(&self, base_root: &Path, seed: u64) -> SweepConfig {
        let run = self.base_cell(seed).dir(base_root).join("run");
        SweepConfig {
            name: format!("{}-from-base-s{seed}", self.sweep.name),
            train: TrainSettings {
                init: Some(run.display().to_string()),
                ..self.sweep.train.clone()
            },
            ..self.sweep.clone()
        }
    }

    fn base_cell(&self, seed: u64) -> Cell {
        let spec = &self.sweep.models[0];
        Cell {
            n: self.base.n,
            model: Model::Trained {
                arch: spec.arch.clone(),
                framework: spec.framework,
                seed,
            },
        }
    }
}

/// One model's scores at one N.
#[derive(Clone, Debug, Serialize)]
pub struct TunedScores {
    /// "scratch" or "from base sK".
    pub model: String,
    pub generalization: Estimate,
    pub rp_vs_memorizer: Estimate,
    /// Fraction of its samples whose nearest held-out row is from S rather
    /// than T (equally many of each).
    pub nearer_source: f64,
    pub gap_sigmas: Vec<f64>,
    pub gap_to_memorizer: Vec<f64>,
    pub gap_to_truth: Option<Vec<f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FinetunePoint {
    pub n: usize,
    /// RP between the fine-tuned copies of the first two bases.
    pub rp_between_bases: Estimate,
    /// Per base, RP between its fine-tuned copy and the from-scratch model.
    pub rp_vs_scratch: Vec<Estimate>,
    /// The from-scratch model, then one per base.
    pub models: Vec<TunedScores>,
}

#[derive(Serialize)]
pub struct FinetuningReport {
    pub points: Vec<FinetunePoint>,
    /// N* (GL crossing 0.5) of the from-scratch model, then per base.
    pub n_star: Vec<(String, Option<f64>)>,
    #[serde(skip)]
    sweeps: Vec<(String, SweepReport)>,
}

pub struct Finetuning;

impl Experiment for Finetuning {
    const NAME: &'static str = "finetuning";
    const ABOUT: &'static str =
        "bases pretrained on S, fine-tuned on nested sets of T beside models trained from scratch: RP, GL, N*";
    type Config = FinetuningConfig;
    type Report = FinetuningReport;

    fn load(path: &Path, options: &RunOptions) -> Result<FinetuningConfig> {
        let mut config: FinetuningConfig = crate::sweep::load_toml(path)?;
        config.sweep = options.with_data(config.sweep, path)?;
        if config.sweep.models.len() != 1 || config.base.seeds.len() < 2 {
            return Err(Error::at(
                path,
                Error::invalid(
                    "finetuning",
                    "",
                    "needs exactly one [[sweep.models]] and two or more base.seeds",
                ),
            ));
        }
        config.base_sweep().checked(path)?;
        Ok(config)
    }

    fn run(config: &FinetuningConfig, options: &RunOptions) -> Result<Option<FinetuningReport>> {
        let root = options.sweep_root(&config.sweep);
        let base = options.prepare_in(config.base_sweep(), &root.join("base"))?;
        let Some(base_report) = run_sweep(&base, options)? else {
            return Ok(None);
        };
        let mut sweeps = vec![(
            "scratch".to_string(),
            options.prepare_in(config.sweep.clone(), &root.join("scratch"))?,
        )];
        for &seed in &config.base.seeds {
            let tuned = config.finetuned_sweep(&base.root, seed);
            let sweep = options.prepare_in(tuned, &root.join(format!("from-base-s{seed}")))?;
            sweeps.push((format!("from base s{seed}"), sweep));
        }
        let mut reports = Vec::new();
        for (name, sweep) in &sweeps {
            match run_sweep(sweep, options)? {
                Some(report) => reports.push((name.clone(), report)),
                None => return Ok(None),
            }
        }
        let points = points(&base, &sweeps, &reports)?;
        let n_star = reports
            .iter()
            .map(|(name, r)| {
                (
                    name.clone(),
                    r.results.crossings.first().and_then(|c| c.n_star),
                )
            })
            .collect();
        reports.insert(0, ("base".into(), base_report));
        Ok(Some(FinetuningReport {
            points,
            n_star,
            sweeps: reports,
        }))
    }

    fn figure_dir(config: &FinetuningConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&config.sweep)
    }

    fn figures(report: &FinetuningReport, dir: &Path) -> Result<()> {
        for (name, sweep) in &report.sweeps {
            write_sweep(sweep, &dir.join(name.replace(' ', "-")), &[])?;
        }
        crate::io::write_json(&dir.join("finetuning.json"), report)?;
        write_atomic(&dir.join("finetuning.csv"), csv(&report.points).as_bytes())?;
        save_figure(&dir.join("finetuning"), &chart(&report.points))?;
        eprintln!(
            "wrote finetuning.json, finetuning.csv and finetuning.png to {}",
            dir.display()
        );
        Ok(())
    }
}

/// The trained cell of `results` at `n` (the sweep has one model, seed 0 first).
fn trained(results: &Results, n: usize) -> Result<&CellResult> {
    results
        .cells
        .iter()
        .find(|c| c.cell.n == n && c.cell.model != Model::Empirical)
        .ok_or_else(|| Error::invalid("sweep", n, "has no trained cell at this N"))
}

fn samples(sweep: &Sweep, cell: &CellResult) -> Result<Tensor> {
    let path = cell.cell.dir(&sweep.root).join(SAMPLES_FILE);
    Ok(read_npy(&path)?.flatten_from(1)?.to_dtype(DType::F32)?)
}

fn points(
    base: &Sweep,
    sweeps: &[(String, Sweep)],
    reports: &[(String, SweepReport)],
) -> Result<Vec<FinetunePoint>> {
    let target = &sweeps[0].1;
    // Equally many held-out rows of S and of T: a sample is nearer S when
    // its nearest row among them is one of S's.
    let m = base.fresh.dim(0)?.min(target.fresh.dim(0)?);
    let reference = Tensor::cat(
        &[
            base.fresh.narrow(0, 0, m)?.flatten_from(1)?,
            target.fresh.narrow(0, 0, m)?.flatten_from(1)?,
        ],
        0,
    )?
    .to_dtype(DType::F32)?;
    let c = &target.config;
    let rp = |a: &Tensor, b: &Tensor| c.metrics.rp(a, b, c.sampling.seed);
    let mut ns = c.ns.clone();
    ns.sort_unstable();
    ns.into_iter()
        .map(|n| {
            let mut models = Vec::new();
            let mut drawn = Vec::new();
            for ((name, sweep), (_, report)) in sweeps.iter().zip(reports) {
                let cell = trained(&report.results, n)?;
                let x = samples(sweep, cell)?;
                let neighbours = nearest_two(&x, &reference, crate::metrics::DEFAULT_CHUNK)?;
                let nearer = neighbours.nearest.iter().filter(|&&i| i < m).count();
                models.push(TunedScores {
                    model: name.clone(),
                    generalization: cell.generalization,
                    rp_vs_memorizer: report.results.rp(n, &cell.label, "empirical").ok_or_else(
                        || Error::invalid("pair", &cell.label, "has no RP against the memorizer"),
                    )?,
                    nearer_source: nearer as f64 / x.dim(0)?.max(1) as f64,
                    gap_sigmas: cell.gap_sigmas.clone(),
                    gap_to_memorizer: cell.gap_to_empirical.clone(),
                    gap_to_truth: cell.gap_to_truth.clone(),
                });
                drawn.push(x);
            }
            Ok(FinetunePoint {
                n,
                rp_between_bases: rp(&drawn[1], &drawn[2])?,
                rp_vs_scratch: drawn[1..]
                    .iter()
                    .map(|x| rp(x, &drawn[0]))
                    .collect::<Result<_>>()?,
                models,
            })
        })
        .collect()
}

fn csv(points: &[FinetunePoint]) -> String {
    let mut out = String::from("n,what,model,value,low,high\n");
    for p in points {
        let mut row = |what: &str, model: &str, e: &Estimate| {
            out.push_str(&format!(
                "{},{what},{model},{},{},{}\n",
                p.n, e.value, e.ci95[0], e.ci95[1]
            ));
        };
        row("rp_between_bases", "", &p.rp_between_bases);
        for (k, e) in p.rp_vs_scratch.iter().enumerate() {
            row("rp_vs_scratch", &p.models[k + 1].model, e);
        }
        for m in &p.models {
            row("generalization", &m.model, &m.generalization);
            row("rp_vs_memorizer", &m.model, &m.rp_vs_memorizer);
            let exact = Estimate {
                value: m.nearer_source,
                ci95: [m.nearer_source; 2],
            };
            row("nearer_source", &m.model, &exact);
        }
    }
    out
}

/// Against N: RP between bases' fine-tuned copies, fine-tuned vs scratch,
/// GL of each model and the fraction nearer S.
fn chart(points: &[FinetunePoint]) -> LineChart {
    let line =
        |label: String, color: usize, dashed: bool, f: &dyn Fn(&FinetunePoint) -> f64| Series {
            label,
            points: points.iter().map(|p| (p.n as f64, f(p))).collect(),
            color,
            dashed,
            ..Series::default()
        };
    let mut series = vec![line(
        "RP, fine-tuned from two bases".into(),
        0,
        false,
        &|p| p.rp_between_bases.value,
    )];
    let names: Vec<String> = points
        .first()
        .map(|p| p.models.iter().map(|m| m.model.clone()).collect())
        .unwrap_or_default();
    series.push(line(
        "RP, fine-tuned (first base) vs scratch".into(),
        1,
        false,
        &|p| p.rp_vs_scratch[0].value,
    ));
    for (k, name) in names.iter().enumerate() {
        series.push(line(format!("GL, {name}"), 2 + k, true, &|p| {
            p.models[k].generalization.value
        }));
    }
    series.push(line(
        "nearer S, first base".into(),
        2 + names.len(),
        true,
        &|p| p.models[1].nearer_source,
    ));
    LineChart {
        title: "fine-tuning: reproducibility and generalization".into(),
        x: Axis::new("target training-set size N", Scale::Log2),
        y: Axis::fixed("score", Scale::Linear, (0.0, 1.0)),
        series,
        shades: Vec::new(),
    }
}
