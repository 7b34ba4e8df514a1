//! Reproducibility across frameworks, architectures and training data (the
//! paper's Fig. 1 and 6; THEORY §9): every framework x architecture trained
//! on the same nested sets, each sampled by its own native sampler from the
//! same noise, at a memorizing, a transitional and a generalizing N; the RP
//! heatmap between every pair, GL and RP against the empirical denoiser per
//! model; and models trained on disjoint sets of the same size (Kadkhodaie
//! et al.), against the memorizers of those two sets.

use std::path::{Path, PathBuf};

use candle_core::DType;
use serde::{Deserialize, Serialize};

use super::{Experiment, RunOptions};
use crate::data::npy::read_npy;
use crate::denoise::EmpiricalDenoiser;
use crate::io::write_atomic;
use crate::metrics::{nearest_two, DEFAULT_CHUNK};
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sweep::{
    budget_samples, rp_heatmaps, run_sweep, write_sweep, CellResult, Estimate, Model, ModelSpec,
    Results, Split, Sweep, SweepConfig, SweepReport, SAMPLES_FILE,
};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworksConfig {
    /// The nested-set sweep: its models list every framework x architecture,
    /// and `sampling.sampler = "native"` samples each by its own sampler.
    pub sweep: SweepConfig,
    /// Models trained twice, by seeds 0 and 1 on two disjoint sets of each
    /// N (in OUT/disjoint); empty: none.
    #[serde(default)]
    pub disjoint: Vec<ModelSpec>,
}

impl FrameworksConfig {
    /// The disjoint-split sweep: the main one's data, N and training, with
    /// the `disjoint` models, seeds 0 and 1, `split = "disjoint"`.
    fn disjoint_sweep(&self) -> Option<SweepConfig> {
        (!self.disjoint.is_empty()).then(|| SweepConfig {
            name: format!("{}-disjoint", self.sweep.name),
            models: self.disjoint.clone(),
            seeds: vec![0, 1],
            split: Split::Disjoint,
            ..self.sweep.clone()
        })
    }
}

/// One trained model's scores at one N.
#[derive(Clone, Debug, Serialize)]
pub struct ModelPoint {
    pub model: String,
    pub framework: String,
    pub arch: String,
    pub generalization: Estimate,
    pub rp_vs_empirical: Estimate,
}

/// A model trained on two disjoint sets of size N, sampled from the same noise.
#[derive(Clone, Debug, Serialize)]
pub struct DisjointPoint {
    pub model: String,
    /// RP between the two models (seeds 0 and 1, sets 0 and 1).
    pub rp_between_sets: Estimate,
    pub generalization: [Estimate; 2],
}

#[derive(Clone, Debug, Serialize)]
pub struct FrameworkPoint {
    pub n: usize,
    /// Mean RP over pairs of models of the same architecture and different
    /// frameworks, of different architectures and the same framework, and
    /// over every pair of trained models (None: no such pair).
    pub rp_across_frameworks: Option<f64>,
    pub rp_across_architectures: Option<f64>,
    pub rp_all_pairs: Option<f64>,
    pub models: Vec<ModelPoint>,
    /// RP between the memorizing denoisers of the two disjoint sets.
    pub rp_between_memorizers: Option<Estimate>,
    pub disjoint: Vec<DisjointPoint>,
}

/// Two trained models at one N after one training budget, sampled from the
/// same noise.
#[derive(Clone, Debug, Serialize)]
pub struct PairPoint {
    pub n: usize,
    /// Training steps the two models had taken.
    pub steps: u64,
    pub a: String,
    pub b: String,
    pub rp: Estimate,
    /// Fraction of the noises from which both models' samples are memorized
    /// (d1/d2 < 1/3) and memorize the same training example; None when the
    /// two learned different sets.
    pub same_training_point: Option<f64>,
}

#[derive(Serialize)]
pub struct FrameworksReport {
    pub points: Vec<FrameworkPoint>,
    /// Every pair of trained models of the nested sweep at every N, after
    /// each budget whose samples the cells kept and after the last step.
    pub pairs: Vec<PairPoint>,
    #[serde(skip)]
    nested: SweepReport,
    #[serde(skip)]
    disjoint: Option<SweepReport>,
}

pub struct Frameworks;

impl Experiment for Frameworks {
    const NAME: &'static str = "frameworks";
    const ABOUT: &'static str =
        "edm, vp-eps, vp, ve and flow x MLP, U-Net, DiT from the same noise: RP heatmaps, disjoint training sets";
    type Config = FrameworksConfig;
    type Report = FrameworksReport;

    fn load(path: &Path, options: &RunOptions) -> Result<FrameworksConfig> {
        let mut config: FrameworksConfig = crate::sweep::load_toml(path)?;
        config.sweep = options.with_data(config.sweep, path)?;
        if let Some(disjoint) = config.disjoint_sweep() {
            disjoint.checked(path)?;
        }
        Ok(config)
    }

    fn run(config: &FrameworksConfig, options: &RunOptions) -> Result<Option<FrameworksReport>> {
        let root = options.sweep_root(&config.sweep);
        let sweep = options.prepare(config.sweep.clone())?;
        let nested = run_sweep(&sweep, options)?;
        let disjoint = match config.disjoint_sweep() {
            None => None,
            Some(c) => {
                let sweep = options.prepare_in(c, &root.join("disjoint"))?;
                let report = run_sweep(&sweep, options)?;
                match report {
                    Some(report) => Some((sweep, report)),
                    None => return Ok(None),
                }
            }
        };
        let Some(nested) = nested else {
            return Ok(None);
        };
        let points = points(&nested.results, disjoint.as_ref())?;
        Ok(Some(FrameworksReport {
            points,
            pairs: pairs(&sweep, &nested.results)?,
            nested,
            disjoint: disjoint.map(|(_, r)| r),
        }))
    }

    fn figure_dir(config: &FrameworksConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&config.sweep)
    }

    fn figures(report: &FrameworksReport, dir: &Path) -> Result<()> {
        if let Some(disjoint) = &report.disjoint {
            write_sweep(disjoint, &dir.join("disjoint"), &[])?;
        }
        write_sweep(&report.nested, dir, &[rp_heatmaps])?;
        crate::io::write_json(&dir.join("frameworks.json"), report)?;
        write_atomic(&dir.join("frameworks.csv"), csv(&report.points).as_bytes())?;
        write_atomic(&dir.join("pairs.csv"), pairs_csv(&report.pairs).as_bytes())?;
        save_figure(&dir.join("frameworks"), &chart(&report.points))?;
        eprintln!(
            "wrote frameworks.json, frameworks.csv, pairs.csv and frameworks.png to {}",
            dir.display()
        );
        Ok(())
    }
}

/// A trained cell's framework and architecture label.
type Parts = (String, String);

/// (framework, architecture) of a trained cell.
fn parts(cell: &CellResult) -> Option<Parts> {
    match &cell.cell.model {
        Model::Trained {
            arch, framework, ..
        } => Some((framework.to_string(), arch.label())),
        Model::Empirical => None,
    }
}

/// The per-N scores of the nested sweep and of the disjoint one.
fn points(
    nested: &Results,
    disjoint: Option<&(Sweep, SweepReport)>,
) -> Result<Vec<FrameworkPoint>> {
    let mut ns = nested.config.ns.clone();
    ns.sort_unstable();
    ns.into_iter()
        .map(|n| {
            let trained: Vec<(&CellResult, Parts)> = nested
                .cells
                .iter()
                .filter(|c| c.cell.n == n)
                .filter_map(|c| parts(c).map(|p| (c, p)))
                .collect();
            let pair = |a: &str, b: &str| nested.rp(n, a, b);
            let mean_of = |keep: &dyn Fn(&Parts, &Parts) -> bool| {
                let mut values = Vec::new();
                for (i, (a, pa)) in trained.iter().enumerate() {
                    for (b, pb) in &trained[i + 1..] {
                        if keep(pa, pb) {
                            values.extend(pair(&a.label, &b.label).map(|e| e.value));
                        }
                    }
                }
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            let models = trained
                .iter()
                .map(|(c, (framework, arch))| {
                    let missing = || {
                        Error::invalid("pair", &c.label, "has no RP against the empirical denoiser")
                    };
                    Ok(ModelPoint {
                        model: c.label.clone(),
                        framework: framework.clone(),
                        arch: arch.clone(),
                        generalization: c.generalization,
                        rp_vs_empirical: pair(&c.label, "empirical").ok_or_else(missing)?,
                    })
                })
                .collect::<Result<_>>()?;
            let (rp_between_memorizers, disjoint) = match disjoint {
                Some((sweep, report)) => disjoint_point(sweep, &report.results, n)?,
                None => (None, Vec::new()),
            };
            Ok(FrameworkPoint {
                n,
                rp_across_frameworks: mean_of(&|a, b| a.1 == b.1 && a.0 != b.0),
                rp_across_architectures: mean_of(&|a, b| a.0 == b.0 && a.1 != b.1),
                rp_all_pairs: mean_of(&|_, _| true),
                models,
                rp_between_memorizers,
                disjoint,
            })
        })
        .collect()
}

/// At `n` of the disjoint sweep: RP between the empirical denoisers of sets
/// 0 and 1 (set 1's sampled here as the cells sample), and per model RP
/// between its two copies.
fn disjoint_point(
    sweep: &Sweep,
    results: &Results,
    n: usize,
) -> Result<(Option<Estimate>, Vec<DisjointPoint>)> {
    let c = &sweep.config;
    let rp = |a: &candle_core::Tensor, b: &candle_core::Tensor| c.metrics.rp(a, b, c.sampling.seed);
    let empirical_cell = results
        .cells
        .iter()
        .find(|r| r.cell.n == n && r.cell.model == Model::Empirical)
        .ok_or_else(|| Error::invalid("disjoint sweep", n, "has no empirical cell at this N"))?;
    let set_0 = read_npy(&empirical_cell.cell.dir(&sweep.root).join(SAMPLES_FILE))?;
    let rows_1 = sweep
        .training_part(n, 1)?
        .flatten_from(1)?
        .to_dtype(DType::F64)?;
    let set_1 = c
        .sampling
        .draw(
            &EmpiricalDenoiser::new(&rows_1)?,
            c.sampling.samples,
            DType::F64,
        )?
        .to_dtype(DType::F32)?;
    let memorizers = rp(&set_0.flatten_from(1)?, &set_1.flatten_from(1)?)?;
    let mut points = Vec::new();
    for spec in &c.models {
        let copy = |seed: u64| {
            results.cells.iter().find(|r| {
                r.cell.n == n
                    && r.cell.model
                        == Model::Trained {
                            arch: spec.arch.clone(),
                            framework: spec.framework,
                            seed,
                        }
            })
        };
        let (Some(a), Some(b)) = (copy(0), copy(1)) else {
            continue;
        };
        let rp_between_sets = results
            .rp(n, &a.label, &b.label)
            .ok_or_else(|| Error::invalid("disjoint pair", &a.label, "has no RP"))?;
        points.push(DisjointPoint {
            model: a.label.trim_end_matches("-s0").to_string(),
            rp_between_sets,
            generalization: [a.generalization, b.generalization],
        });
    }
    Ok((Some(memorizers), points))
}

/// RP and the shared memorized example of every pair of trained models, per
/// N and per stage: each budget of `train.budgets` whose samples every
/// model kept, then the last step.
fn pairs(sweep: &Sweep, results: &Results) -> Result<Vec<PairPoint>> {
    let c = &sweep.config;
    let mut ns = c.ns.clone();
    ns.sort_unstable();
    let mut stages: Vec<u64> = c.train.budgets.clone();
    stages.retain(|&b| b < c.train.steps);
    stages.push(c.train.steps);
    let mut out = Vec::new();
    for n in ns {
        let trained: Vec<&CellResult> = results
            .cells
            .iter()
            .filter(|r| r.cell.n == n && parts(r).is_some())
            .collect();
        // Each model is searched in its own training set (a disjoint split
        // gives each seed its own part).
        let sets = trained
            .iter()
            .map(|r| Ok(r.cell.training_set(sweep)?.flatten_from(1)?))
            .collect::<Result<Vec<_>>>()?;
        for &steps in &stages {
            let file = |r: &CellResult| {
                let dir = r.cell.dir(&sweep.root);
                match steps == c.train.steps {
                    true => dir.join(SAMPLES_FILE),
                    false => budget_samples(&dir, steps),
                }
            };
            if !trained.iter().all(|r| file(r).exists()) {
                continue;
            }
            // Per model: its samples, the example each lands nearest and
            // whether it is memorized there.
            let models = trained
                .iter()
                .zip(&sets)
                .map(|(r, train)| {
                    let samples = read_npy(&file(r))?.flatten_from(1)?.to_dtype(DType::F32)?;
                    let neighbours = nearest_two(&samples, train, DEFAULT_CHUNK)?;
                    let memorized = neighbours.ratio_memorized();
                    Ok((r, samples, neighbours.nearest, memorized))
                })
                .collect::<Result<Vec<_>>>()?;
            for (i, (ra, xa, na, ma)) in models.iter().enumerate() {
                for (rb, xb, nb, mb) in &models[i + 1..] {
                    let shared = (0..na.len())
                        .filter(|&j| ma[j] && mb[j] && na[j] == nb[j])
                        .count() as f64;
                    let same_set = ra.cell.part(sweep) == rb.cell.part(sweep);
                    out.push(PairPoint {
                        n,
                        steps,
                        a: ra.label.clone(),
                        b: rb.label.clone(),
                        rp: c.metrics.rp(xa, xb, c.sampling.seed)?,
                        same_training_point: same_set.then(|| shared / na.len().max(1) as f64),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn pairs_csv(pairs: &[PairPoint]) -> String {
    let mut out = String::from("n,steps,a,b,rp,rp_low,rp_high,same_training_point\n");
    for p in pairs {
        let same = p
            .same_training_point
            .map_or(String::new(), |v| v.to_string());
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{same}\n",
            p.n, p.steps, p.a, p.b, p.rp.value, p.rp.ci95[0], p.rp.ci95[1]
        ));
    }
    out
}

fn csv(points: &[FrameworkPoint]) -> String {
    let mut out = String::from("n,what,model,value\n");
    for p in points {
        let mut row = |what: &str, model: &str, value: f64| {
            out.push_str(&format!("{},{what},{model},{value}\n", p.n));
        };
        for (what, mean) in [
            ("rp_across_frameworks", p.rp_across_frameworks),
            ("rp_across_architectures", p.rp_across_architectures),
            ("rp_all_pairs", p.rp_all_pairs),
        ] {
            if let Some(mean) = mean {
                row(what, "", mean);
            }
        }
        for m in &p.models {
            row("generalization", &m.model, m.generalization.value);
            row("rp_vs_empirical", &m.model, m.rp_vs_empirical.value);
        }
        if let Some(e) = p.rp_between_memorizers {
            row("rp_between_disjoint_memorizers", "empirical", e.value);
        }
        for d in &p.disjoint {
            row(
                "rp_between_disjoint_sets",
                &d.model,
                d.rp_between_sets.value,
            );
        }
    }
    out
}

/// RP against N: mean across frameworks, across architectures, every pair;
/// the disjoint-set models and the disjoint-set memorizers.
fn chart(points: &[FrameworkPoint]) -> LineChart {
    let line = |label: &str,
                color: usize,
                dashed: bool,
                f: &dyn Fn(&FrameworkPoint) -> Option<f64>| Series {
        label: label.into(),
        points: points
            .iter()
            .filter_map(|p| f(p).map(|v| (p.n as f64, v)))
            .collect(),
        color,
        dashed,
        ..Series::default()
    };
    let mut series = vec![
        line("across frameworks (same arch)", 0, false, &|p| {
            p.rp_across_frameworks
        }),
        line("across architectures (same framework)", 1, false, &|p| {
            p.rp_across_architectures
        }),
        line("all pairs of trained models", 2, false, &|p| p.rp_all_pairs),
        line("memorizers of two disjoint sets", 3, true, &|p| {
            p.rp_between_memorizers.map(|e| e.value)
        }),
    ];
    let disjoint: Vec<String> = points
        .first()
        .map(|p| p.disjoint.iter().map(|d| d.model.clone()).collect())
        .unwrap_or_default();
    for (k, model) in disjoint.iter().enumerate() {
        let value = |p: &FrameworkPoint| {
            p.disjoint
                .iter()
                .find(|d| &d.model == model)
                .map(|d| d.rp_between_sets.value)
        };
        series.push(line(
            &format!("{model}, two disjoint sets"),
            4 + k,
            true,
            &value,
        ));
    }
    LineChart {
        title: "reproducibility from the same noise".into(),
        x: Axis::new("training-set size N", Scale::Log2),
        y: Axis::fixed("RP", Scale::Linear, (0.0, 1.0)),
        series,
        shades: Vec::new(),
    }
}
