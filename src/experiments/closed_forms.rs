//! Which closed form explains the network (THEORY §12)? Networks trained at
//! N across the transition, each sampled from the same noise as every
//! analytic candidate: the empirical (memorizing) denoiser, the Gaussian
//! one, the KDE at its held-out-likelihood bandwidth, and the patch
//! denoisers with their patch sizes calibrated on the network's own
//! trajectory. Per (N, model, candidate): the median r^2 between the
//! network's samples and the candidate's, RP, and the per-sigma gap.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::calibration::calibrate_patches;
use super::{Experiment, RunOptions};
use crate::data::npy::read_npy;
use crate::denoise::{
    Denoiser, EmpiricalDenoiser, GaussianDenoiser, KdeDenoiser, PatchDenoiser, PatchKind,
};
use crate::io::{read_json, write_atomic, write_json};
use crate::metrics::{denoiser_gap, quantile, r_squared, Bootstrap, Similarity};
use crate::plot::{save_figure, Axis, LineChart, Scale, Series};
use crate::sample::{starting_points, Method};
use crate::sweep::{
    regime_shades, run_sweep, write_sweep, Cell, Estimate, Model, Results, Sweep, SweepConfig,
    SweepReport, SAMPLES_FILE,
};
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedFormsConfig {
    /// The sweep whose EDM models are explained (sampled by Heun).
    pub sweep: SweepConfig,
    pub candidates: CandidateSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateSettings {
    /// Patch denoisers, each calibrated per model: local, els, els-boundary, window-mean.
    pub patches: Vec<PatchKind>,
    /// The odd patch sizes calibration chooses from.
    pub sizes: Vec<usize>,
    /// Trajectories (samples 0..this) the calibration scores.
    pub calibration_samples: usize,
    /// The KDE bandwidths tried; the one with the highest held-out log density is kept.
    pub bandwidths: Vec<f64>,
}

/// How well one candidate explains one model at one N.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CandidateFit {
    pub n: usize,
    pub model: String,
    pub candidate: String,
    /// Median and quartiles over samples of r^2(model sample, candidate
    /// sample), and the median's bootstrap 95% interval over the samples.
    pub r2_median: f64,
    pub r2_quartiles: [f64; 2],
    #[serde(default)]
    pub r2_interval: Option<[f64; 2]>,
    /// The network's receptive field (side, in pixels) where it is local.
    #[serde(default)]
    pub receptive_field: Option<usize>,
    /// None where a candidate sample is a constant image, for which the
    /// sweep's (centred) cosine is undefined.
    pub rp: Option<Estimate>,
    /// gap(model, candidate) at the sweep's gap sigmas (THEORY §7).
    pub gap: Vec<f64>,
    /// The KDE's fitted bandwidth.
    pub bandwidth: Option<f64>,
    /// A patch denoiser's calibrated (sigma, k) per step.
    pub schedule: Option<Vec<(f64, usize)>>,
}

#[derive(Serialize)]
pub struct ClosedFormsReport {
    pub gap_sigmas: Vec<f64>,
    pub fits: Vec<CandidateFit>,
    #[serde(skip)]
    sweep: SweepReport,
}

/// Each trained cell's fits, written once computed, so a rerun resumes.
const FITS_FILE: &str = "closed_forms.json";

pub struct ClosedForms;

impl Experiment for ClosedForms {
    const NAME: &'static str = "closed_forms";
    const ABOUT: &'static str =
        "trained models against every closed form (empirical, Gaussian, KDE, local, ELS, window mean): r^2, RP, gaps";
    type Config = ClosedFormsConfig;
    type Report = ClosedFormsReport;

    fn load(path: &Path, options: &RunOptions) -> Result<ClosedFormsConfig> {
        let mut config: ClosedFormsConfig = crate::sweep::load_toml(path)?;
        config.sweep = options.with_data(config.sweep, path)?;
        if let Some(spec) = config.sweep.models.iter().find(|m| !m.framework.is_edm()) {
            return Err(Error::format(
                path,
                format!(
                    "closed_forms explains EDM models only, not {}",
                    spec.framework
                ),
            ));
        }
        let c = &config.candidates;
        if c.calibration_samples == 0 || c.sizes.is_empty() || c.bandwidths.is_empty() {
            return Err(Error::format(
                path,
                "[candidates] needs calibration_samples >= 1, sizes and bandwidths",
            ));
        }
        Ok(config)
    }

    fn run(config: &ClosedFormsConfig, options: &RunOptions) -> Result<Option<ClosedFormsReport>> {
        let sweep = options.prepare(config.sweep.clone())?;
        let Some(report) = run_sweep(&sweep, options)? else {
            return Ok(None);
        };
        let mut fits = Vec::new();
        for n in sorted(&config.sweep.ns) {
            let shared = SharedCandidates::new(&sweep, &config.candidates, n)?;
            for cell in report.results.cells.iter().map(|c| &c.cell) {
                if cell.n == n && cell.model != Model::Empirical {
                    fits.extend(fit_cell(&sweep, &config.candidates, &shared, cell)?);
                }
            }
        }
        Ok(Some(ClosedFormsReport {
            gap_sigmas: config.sweep.metrics.gap_sigmas.clone(),
            fits,
            sweep: report,
        }))
    }

    fn figure_dir(config: &ClosedFormsConfig, options: &RunOptions) -> PathBuf {
        options.sweep_root(&config.sweep)
    }

    fn figures(report: &ClosedFormsReport, dir: &Path) -> Result<()> {
        write_sweep(&report.sweep, dir, &[])?;
        write_json(&dir.join("closed_forms.json"), report)?;
        write_atomic(&dir.join("closed_forms.csv"), csv(report).as_bytes())?;
        let mut models: Vec<String> = report.fits.iter().map(|f| arch_of(&f.model)).collect();
        models.dedup();
        for model in &models {
            let chart = chart(&report.fits, model, &report.sweep.results);
            save_figure(&dir.join(format!("closed_forms_{model}")), &chart)?;
            let sizes = sizes_chart(&report.fits, model);
            save_figure(&dir.join(format!("patch_sizes_{model}")), &sizes)?;
        }
        eprintln!(
            "wrote closed_forms.json, .csv, and per architecture an r^2 and a patch-size figure to {}",
            dir.display()
        );
        Ok(())
    }
}

fn sorted(ns: &[usize]) -> Vec<usize> {
    let mut ns = ns.to_vec();
    ns.sort_unstable();
    ns
}

/// A model label without its seed: the figure's name.
fn arch_of(label: &str) -> String {
    label
        .rsplit_once("-s")
        .map_or(label, |(arch, _)| arch)
        .to_string()
}

/// The candidates that do not depend on the model, sampled once per N.
struct SharedCandidates {
    /// [N, C, H, W] as the patch denoisers read them.
    images: Tensor,
    list: Vec<Candidate>,
}

/// A candidate's name, denoiser, samples and KDE bandwidth (if it is the KDE).
type Candidate = (String, Box<dyn Denoiser>, Tensor, Option<f64>);

impl SharedCandidates {
    fn new(sweep: &Sweep, settings: &CandidateSettings, n: usize) -> Result<Self> {
        let empirical_cell = Cell {
            n,
            model: Model::Empirical,
        };
        let images = empirical_cell.training_set(sweep)?;
        let rows = images.flatten_from(1)?.to_dtype(DType::F64)?;
        let empirical = EmpiricalDenoiser::new(&rows)?;
        let empirical_samples = read_npy(&empirical_cell.dir(&sweep.root).join(SAMPLES_FILE))?;
        let bandwidth = KdeDenoiser::fit_bandwidth(&rows, &sweep.fresh, &settings.bandwidths)?;
        let mut list: Vec<Candidate> = vec![(
            "empirical".into(),
            Box::new(empirical),
            empirical_samples.flatten_from(1)?,
            None,
        )];
        let gaussian: Box<dyn Denoiser> = Box::new(GaussianDenoiser::fit(&rows)?);
        let kde: Box<dyn Denoiser> = Box::new(KdeDenoiser::new(&rows, bandwidth)?);
        for (name, d, s) in [("gaussian", gaussian, None), ("kde", kde, Some(bandwidth))] {
            eprintln!("closed_forms: N = {n}, sampling {name}");
            let samples = draw(sweep, d.as_ref(), DType::F64)?;
            list.push((name.into(), d, samples, s));
        }
        Ok(Self {
            images: images.to_dtype(DType::F32)?,
            list,
        })
    }
}

fn draw(sweep: &Sweep, d: &dyn Denoiser, dtype: DType) -> Result<Tensor> {
    let sampling = &sweep.config.sampling;
    Ok(sampling
        .draw(d, sampling.samples, dtype)?
        .to_dtype(DType::F32)?)
}

/// Every candidate against one trained cell, read back if a previous run wrote them.
fn fit_cell(
    sweep: &Sweep,
    settings: &CandidateSettings,
    shared: &SharedCandidates,
    cell: &Cell,
) -> Result<Vec<CandidateFit>> {
    let dir = cell.dir(&sweep.root);
    if dir.join(FITS_FILE).exists() {
        return read_json(&dir.join(FITS_FILE));
    }
    let label = cell.model.label();
    let receptive_field = match &cell.model {
        Model::Trained { arch, .. } => arch.receptive_field(),
        Model::Empirical => None,
    };
    let (model, _) = cell.denoiser(sweep)?;
    let samples = read_npy(&dir.join(SAMPLES_FILE))?.flatten_from(1)?;
    let score = |name: &str, d: &dyn Denoiser, theirs: &Tensor| -> Result<CandidateFit> {
        let mut r2 = r_squared(&samples, theirs)?;
        r2.sort_by(f64::total_cmp);
        let at = |q: f64| quantile(&r2, q).expect("at least one sample");
        let c = &sweep.config;
        let bootstrap = Bootstrap {
            resamples: c.metrics.resamples,
            seed: c.sampling.seed,
        };
        let median_of = |rows: &[usize]| {
            let mut picked: Vec<f64> = rows.iter().map(|&i| r2[i]).collect();
            picked.sort_by(f64::total_cmp);
            quantile(&picked, 0.5).expect("a resample is not empty")
        };
        Ok(CandidateFit {
            n: cell.n,
            model: label.clone(),
            candidate: name.to_string(),
            r2_median: at(0.5),
            r2_quartiles: [at(0.25), at(0.75)],
            r2_interval: Some(bootstrap.interval_of(r2.len(), median_of)),
            receptive_field,
            rp: match has_constant_row(theirs)? {
                true => None,
                false => Some(c.metrics.rp(&samples, theirs, c.sampling.seed)?),
            },
            gap: denoiser_gap(
                model.as_ref(),
                d,
                &sweep.fresh,
                &c.metrics.gap_sigmas,
                c.sampling.seed,
            )?,
            bandwidth: None,
            schedule: None,
        })
    };
    let mut fits = Vec::new();
    for (name, d, theirs, bandwidth) in &shared.list {
        fits.push(CandidateFit {
            bandwidth: *bandwidth,
            ..score(name, d.as_ref(), theirs)?
        });
    }
    for &kind in &settings.patches {
        eprintln!(
            "closed_forms: N = {}, {label}: calibrating {}",
            cell.n,
            kind.name()
        );
        let patch = calibrated(sweep, settings, model.as_ref(), kind, &shared.images)?;
        let theirs = draw(sweep, &patch.0, DType::F32)?;
        fits.push(CandidateFit {
            schedule: Some(patch.1),
            ..score(kind.name(), &patch.0, &theirs)?
        });
    }
    write_json(&dir.join(FITS_FILE), &fits)?;
    Ok(fits)
}

/// The patch denoiser of `kind` with its sizes calibrated on `model`'s
/// Heun trajectories from the sweep's first sampling noises.
fn calibrated(
    sweep: &Sweep,
    settings: &CandidateSettings,
    model: &dyn Denoiser,
    kind: PatchKind,
    images: &Tensor,
) -> Result<(PatchDenoiser, Vec<(f64, usize)>)> {
    let sampling = &sweep.config.sampling;
    let indices: Vec<u64> = (0..settings.calibration_samples as u64).collect();
    let sigmas = sampling.schedule.sigmas()?;
    let (start, _) = starting_points(
        sampling.seed,
        &indices,
        model.dim(),
        sigmas[0],
        DType::F32,
        &Device::Cpu,
    )?;
    let calibration = calibrate_patches(
        model,
        kind,
        images,
        &settings.sizes,
        (&start, &sigmas),
        &Method::Heun,
        Similarity::Cosine,
    )?;
    let table: Vec<(f64, usize)> = calibration.steps.iter().map(|s| (s.sigma, s.k)).collect();
    Ok((
        PatchDenoiser::new(kind, images, calibration.schedule())?,
        table,
    ))
}

/// Whether some row of `rows` ([M, n]) has every coordinate equal.
fn has_constant_row(rows: &Tensor) -> Result<bool> {
    let spread = (rows.max_keepdim(1)? - rows.min_keepdim(1)?)?.flatten_all()?;
    Ok(spread
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?
        .contains(&0.0))
}

fn csv(report: &ClosedFormsReport) -> String {
    let gaps: Vec<String> = report
        .gap_sigmas
        .iter()
        .map(|s| format!("gap_{s}"))
        .collect();
    let mut out = format!(
        "n,model,receptive_field,candidate,r2_median,r2_low,r2_high,r2_q25,r2_q75,rp,{}\n",
        gaps.join(",")
    );
    for f in &report.fits {
        let gap: Vec<String> = f.gap.iter().map(|g| g.to_string()).collect();
        let [low, high] = f.r2_interval.unwrap_or([f64::NAN; 2]);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            f.n,
            f.model,
            f.receptive_field.map_or(String::new(), |r| r.to_string()),
            f.candidate,
            f.r2_median,
            low,
            high,
            f.r2_quartiles[0],
            f.r2_quartiles[1],
            f.rp.map_or(String::new(), |e| e.value.to_string()),
            gap.join(",")
        ));
    }
    out
}

/// The calibrated patch size against sigma, one line per patch kind and N
/// (dashed below the largest N), for the models of `arch` (the first seed's).
fn sizes_chart(fits: &[CandidateFit], arch: &str) -> LineChart {
    let largest = fits.iter().map(|f| f.n).max().unwrap_or(0);
    let mut kinds: Vec<&str> = Vec::new();
    let series = (fits.iter())
        .filter(|f| arch_of(&f.model) == arch && f.model.ends_with("-s0"))
        .filter_map(|f| {
            let schedule = f.schedule.as_ref()?;
            if !kinds.contains(&f.candidate.as_str()) {
                kinds.push(&f.candidate);
            }
            let color = kinds.iter().position(|&k| k == f.candidate).unwrap_or(0);
            Some(Series {
                label: format!("{} N = {}", f.candidate, f.n),
                points: schedule.iter().map(|&(s, k)| (s, k as f64)).collect(),
                color,
                dashed: f.n < largest,
                ..Series::default()
            })
        })
        .collect();
    LineChart {
        title: format!("patch size calibrated per step on {arch}'s trajectories"),
        x: Axis::new("noise level sigma", Scale::Log10),
        y: Axis::new("patch size k", Scale::Linear),
        series,
        shades: Vec::new(),
    }
}

/// Median r^2 against N, one line per candidate, for the models of `arch`
/// (seeds averaged), the sweep's regimes shaded.
fn chart(fits: &[CandidateFit], arch: &str, results: &Results) -> LineChart {
    let mine: Vec<&CandidateFit> = fits.iter().filter(|f| arch_of(&f.model) == arch).collect();
    let mut candidates: Vec<&str> = Vec::new();
    for f in &mine {
        if !candidates.contains(&f.candidate.as_str()) {
            candidates.push(&f.candidate);
        }
    }
    let series = candidates
        .iter()
        .enumerate()
        .map(|(color, &name)| {
            let mut points = Vec::new();
            for n in sorted(&results.config.ns) {
                let values: Vec<f64> = (mine.iter())
                    .filter(|f| f.n == n && f.candidate == name)
                    .map(|f| f.r2_median)
                    .collect();
                if !values.is_empty() {
                    points.push((n as f64, values.iter().sum::<f64>() / values.len() as f64));
                }
            }
            Series {
                label: name.into(),
                points,
                color,
                ..Series::default()
            }
        })
        .collect::<Vec<_>>();
    let low = (mine.iter().map(|f| f.r2_median).fold(0.0, f64::min) - 0.05).max(-1.0);
    LineChart {
        title: format!("which closed form explains {arch}? (r^2 of samples from the same noise)"),
        x: Axis::new("training-set size N", Scale::Log2),
        y: Axis::fixed("median r^2", Scale::Linear, (low, 1.0)),
        series,
        shades: regime_shades(results),
    }
}
