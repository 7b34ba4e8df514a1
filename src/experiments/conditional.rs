//! Reproducibility of class-conditional and guided generation across N
//! (THEORY §10): the sweep trains class-conditional networks (label dropout
//! `train.p_uncond`, so each is also unconditional); at each N and guidance
//! weight w every model samples every class from the same noises z_0 ..
//! z_(M-1) with D_w = (1 + w) D(x; sigma, c) - w D(x; sigma). Scored, pooled
//! over the classes: RP between the models, RP of each against the exact
//! memorizing solution (the same guidance of the class's and the whole
//! training set's empirical denoisers) and against the true class-conditional
//! denoiser, GL of each, and how often a sample's nearest training point
//! carries its class.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::scored::{csv_rows, curves_chart, score_outputs, References, ScoredPoint};
use super::{csv_cell, Experiment, RunOptions};
use crate::denoise::conditional::{component_alone, rows_of_class, Guided};
use crate::denoise::{EmpiricalDenoiser, Mixture};
use crate::io::{write_atomic, write_json};
use crate::metrics::{class_agreement, Bootstrap};
use crate::nn::checkpoint::{load_model, Weights};
use crate::nn::ClassModel;
use crate::plot::{save_figure, write_image_grid, GridRow};
use crate::sweep::{
    check_finite, nearest_images, Cell, Estimate, Model, Sweep, SweepConfig, GRID_ZOOM,
    NEAREST_LABEL,
};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalConfig {
    /// Guidance weights w; 0 is the conditional denoiser itself.
    pub guidance: Vec<f64>,
    /// Samples per class, from noises z_0 .. z_(samples - 1) of the sampling seed.
    pub samples: usize,
    /// The sweep that trains the models: class-conditional (`train.p_uncond`),
    /// at least two per N for RP between them.
    pub sweep: SweepConfig,
}

/// How often the samples' nearest training point has their class, per model
/// (in the sweep's order) and for the true class-conditional denoiser.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    pub n: usize,
    /// The classes sampled: those the training set of size N holds (a small
    /// N may miss some, and a class without training points has no
    /// memorizing solution).
    pub classes: Vec<u32>,
    pub models: Vec<Estimate>,
    pub truth: Option<Estimate>,
}

#[derive(Serialize)]
pub struct GuidanceCurves {
    pub weight: f64,
    pub points: Vec<ScoredPoint>,
    pub class_agreement: Vec<Agreement>,
    /// For image data, per N: the first noises' samples of every class,
    /// by the memorizing solution and each model (each over its nearest
    /// training images); drawn as `samples_w<k>_nNNNNN.png`.
    #[serde(skip)]
    pub grids: Vec<(usize, Vec<GridRow>)>,
}

#[derive(Serialize)]
pub struct ConditionalReport {
    pub similarity: String,
    pub threshold: f64,
    /// Classes of the data set (each N samples those it holds).
    pub classes: usize,
    pub guidance: Vec<GuidanceCurves>,
}

pub struct Conditional;

impl Experiment for Conditional {
    const NAME: &'static str = "conditional";
    const ABOUT: &'static str =
        "RP of class-conditional and guided samples between models, against the memorizing solution, vs N";
    type Config = ConditionalConfig;
    type Report = ConditionalReport;

    fn load(path: &Path, options: &RunOptions) -> Result<ConditionalConfig> {
        let mut config: ConditionalConfig = super::load_toml(path)?;
        config.sweep = options.with_data(config.sweep, path)?;
        let trained = config.sweep.models.len() * config.sweep.seeds.len();
        let problem = if trained < 2 {
            Some("needs at least two trained models per N")
        } else if config.sweep.train.p_uncond.is_none() {
            Some("needs class-conditional models: set sweep.train.p_uncond (e.g. 0.1)")
        } else if config.samples < 2 {
            Some("needs at least 2 samples per class")
        } else if config.guidance.is_empty() || config.guidance.iter().any(|w| !w.is_finite()) {
            Some("guidance must list finite weights")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::format(path, problem)),
            None => Ok(config),
        }
    }

    fn run(c: &ConditionalConfig, options: &RunOptions) -> Result<Option<ConditionalReport>> {
        let sweep = options.prepare(c.sweep.clone())?;
        sweep.run(options.shard, options.jobs)?;
        let classes = sweep
            .conditioning()
            .expect("load checked p_uncond, prepare checked the labels")
            .classes;
        let guidance = c
            .guidance
            .iter()
            .map(|&weight| {
                let mut points = Vec::new();
                let mut class_agreement = Vec::new();
                let mut grids = Vec::new();
                for &n in &c.sweep.ns {
                    let (point, agreement, grid) = score_at(c, &sweep, weight, n)?;
                    grids.extend(grid.map(|rows| (n, rows)));
                    println!(
                        "w = {weight} N = {n}: RP between models {:.3}, vs memorizing {}",
                        point.rp_between_models.value,
                        point
                            .models
                            .iter()
                            .map(|m| format!("{:.3}", m.rp_vs_memorizing.value))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    points.push(point);
                    class_agreement.push(agreement);
                }
                Ok(GuidanceCurves {
                    weight,
                    points,
                    class_agreement,
                    grids,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(ConditionalReport {
            similarity: c.sweep.metrics.rp_similarity.name().into(),
            threshold: c.sweep.metrics.rp_threshold,
            classes,
            guidance,
        }))
    }

    fn figure_dir(c: &ConditionalConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&c.sweep)
    }

    fn figures(report: &ConditionalReport, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join("conditional.json"), report)?;
        let mut csv = String::from(
            "guidance,n,model,rp_between_models,rp_vs_memorizing,rp_vs_truth,generalization\n",
        );
        let mut agreement = String::from("guidance,n,model,class_agreement\n");
        for (k, curves) in report.guidance.iter().enumerate() {
            let weight = curves.weight.to_string();
            csv.push_str(&csv_rows(&[&weight], &curves.points));
            for (a, p) in curves.class_agreement.iter().zip(&curves.points) {
                for (e, m) in a.models.iter().zip(&p.models) {
                    agreement.push_str(&format!("{weight},{},{},{}\n", a.n, m.model, e.value));
                }
                let truth = csv_cell(a.truth.map(|e| e.value));
                agreement.push_str(&format!("{weight},{},truth,{truth}\n", a.n));
            }
            save_figure(
                &dir.join(format!("conditional_{k}")),
                &chart(report, curves),
            )?;
            for (n, rows) in &curves.grids {
                let path = dir.join(format!("samples_w{k}_n{n:05}.png"));
                write_image_grid(&path, rows, GRID_ZOOM)?;
            }
        }
        write_atomic(&dir.join("conditional.csv"), csv.as_bytes())?;
        write_atomic(&dir.join("class_agreement.csv"), agreement.as_bytes())?;
        eprintln!(
            "wrote conditional.json, conditional.csv, class_agreement.csv and figures to {}",
            dir.display()
        );
        Ok(())
    }
}

/// Every trained model's guided samples at N of every class its training set
/// holds, pooled over them (class after class, z_0 .. z_(M-1) in each), scored.
fn score_at(
    c: &ConditionalConfig,
    sweep: &Sweep,
    weight: f64,
    n: usize,
) -> Result<(ScoredPoint, Agreement, Option<Vec<GridRow>>)> {
    let train = sweep
        .training_set(n)?
        .flatten_from(1)?
        .to_dtype(DType::F64)?;
    let labels = sweep
        .training_labels(n, 0)?
        .expect("a conditional sweep has labels");
    let mut present = labels.clone();
    present.sort_unstable();
    present.dedup();
    let samples = |guided: &dyn Fn(u32) -> Result<(Guided, DType)>| -> Result<Tensor> {
        let per_class = present
            .iter()
            .map(|&class| draw(c, guided(class)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&per_class, 0)?)
    };
    let memorizing = samples(&|class| {
        let of_class = EmpiricalDenoiser::new(&rows_of_class(&train, &labels, class)?)?;
        let all = EmpiricalDenoiser::new(&train)?;
        Ok((
            Guided::new(Box::new(of_class), Box::new(all), weight)?,
            DType::F64,
        ))
    })?;
    let truth = match &sweep.truth {
        Some(t) => Some(samples(&|class| {
            let whole = Mixture::new(t.mixture.components().to_vec())?;
            let alone = component_alone(&t.mixture, class as usize)?;
            Ok((
                Guided::new(Box::new(alone), Box::new(whole), weight)?,
                DType::F64,
            ))
        })?),
        None => None,
    };
    let outputs = Sweep::grid(&c.sweep)
        .into_iter()
        .filter(|cell| cell.n == n && cell.model != Model::Empirical)
        .map(|cell| {
            let x = samples(&|class| guided_network(sweep, &cell, class, weight))?;
            Ok((cell.model.label(), x))
        })
        .collect::<Result<Vec<_>>>()?;
    let seed = c.sweep.sampling.seed;
    let agreement = Agreement {
        n,
        classes: present.clone(),
        models: outputs
            .iter()
            .map(|(_, x)| agreement_of(c, x, &train, &labels, &present))
            .collect::<Result<_>>()?,
        truth: truth
            .as_ref()
            .map(|x| agreement_of(c, x, &train, &labels, &present))
            .transpose()?,
    };
    let references = References {
        memorizing: &memorizing,
        truth: truth.as_ref(),
        train: &train,
    };
    let point = score_outputs(n, &outputs, &references, &c.sweep.metrics, seed)?;
    let grid = matches!(sweep.sample_shape(), [1 | 3, _, _])
        .then(|| grid_rows(c, sweep, n, present.len(), &memorizing, &outputs))
        .transpose()?;
    Ok((point, agreement, grid))
}

/// Class agreement of pooled samples `x` (`c.samples` per class of
/// `classes`, class after class) against the training set and its labels.
fn agreement_of(
    c: &ConditionalConfig,
    x: &Tensor,
    train: &Tensor,
    labels: &[u32],
    classes: &[u32],
) -> Result<Estimate> {
    let wanted: Vec<u32> = classes
        .iter()
        .flat_map(|&class| std::iter::repeat_n(class, c.samples))
        .collect();
    let bootstrap = Bootstrap {
        resamples: c.sweep.metrics.resamples,
        seed: c.sweep.sampling.seed,
    };
    let score = class_agreement(x, train, labels, &wanted, bootstrap)?;
    Ok(Estimate::from(&score))
}

/// Noises per class shown in a sample grid.
const GRID_NOISES: usize = 2;

/// The grid of image samples at N: the first noises of every class (class
/// after class), by the memorizing solution and then each model, each over
/// the nearest training images.
fn grid_rows(
    c: &ConditionalConfig,
    sweep: &Sweep,
    n: usize,
    classes: usize,
    memorizing: &Tensor,
    outputs: &[(String, Tensor)],
) -> Result<Vec<GridRow>> {
    let train = sweep.training_set(n)?;
    let shown: Vec<u32> = (0..classes)
        .flat_map(|k| (0..GRID_NOISES.min(c.samples)).map(move |j| (k * c.samples + j) as u32))
        .collect();
    let index = Tensor::new(shown.as_slice(), &Device::Cpu)?;
    let mut rows = Vec::new();
    let labelled = std::iter::once(("memorizing", memorizing))
        .chain(outputs.iter().map(|(label, x)| (label.as_str(), x)));
    for (label, x) in labelled {
        let images = x
            .index_select(&index, 0)?
            .to_dtype(DType::F32)?
            .reshape([&[shown.len()][..], sweep.sample_shape()].concat())?;
        let nearest = nearest_images(&images, &train)?;
        rows.push(GridRow::new(label, images));
        rows.push(GridRow::new(NEAREST_LABEL, nearest));
    }
    Ok(rows)
}

/// A trained cell's network guided toward `class`: its class-conditional
/// and its unconditional (no-class) outputs, EMA weights, in f32.
fn guided_network(sweep: &Sweep, cell: &Cell, class: u32, weight: f64) -> Result<(Guided, DType)> {
    let run = cell.dir(&sweep.root).join("run");
    let network = || load_model(&run, Weights::Ema, &sweep.device);
    let conditional = ClassModel::new(network()?, class)?;
    let guided = Guided::new(Box::new(conditional), Box::new(network()?), weight)?;
    Ok((guided, DType::F32))
}

/// Samples z_0 .. z_(M-1) of the sweep's sampling seed through `denoiser`
/// (Heun, the sweep's schedule), as f64 rows; a diverged model is an error.
fn draw(c: &ConditionalConfig, (denoiser, dtype): (Guided, DType)) -> Result<Tensor> {
    let x = c.sweep.sampling.draw(&denoiser, c.samples, dtype)?;
    check_finite(&x, "guided samples")?;
    Ok(x.to_dtype(DType::F64)?)
}

/// The scores against N (class agreement, near 1 for most points, is
/// left to class_agreement.csv: its lines would hide the GL curves).
fn chart(report: &ConditionalReport, curves: &GuidanceCurves) -> crate::plot::LineChart {
    let title = format!(
        "class-conditional samples, guidance w = {} ({} > {})",
        curves.weight, report.similarity, report.threshold
    );
    let references = (
        "memorizing class-conditional denoiser",
        "true class-conditional denoiser",
    );
    curves_chart(title, &curves.points, references)
}
