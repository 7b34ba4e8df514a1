//! What a sweep's models train, sample and score with: the settings that
//! do not vary over its grid.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::cell::{Estimate, Model};
use crate::denoise::Denoiser;
use crate::metrics::{reproducibility, Bootstrap, Similarity};
use crate::nn::train::Target;
use crate::nn::TrainOptions;
use crate::sample::{generate, Method, Plan, Schedule};
use crate::Result;

/// How each model is trained; the fields of [`crate::nn::train::TrainConfig`]
/// that do not vary over the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup: u64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_clip")]
    pub clip: f64,
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    #[serde(default = "default_p_mean")]
    pub p_mean: f64,
    #[serde(default = "default_p_std")]
    pub p_std: f64,
    /// sigma_data; omitted: the training subset's own (THEORY §3).
    pub sigma_data: Option<f64>,
    /// The budget check (THEORY §13): step counts, increasing, the last
    /// equal to `steps` (e.g. [B, 2B, 4B] with 4B = steps); each trained
    /// cell is also measured after each of them (its training extended in
    /// segments, bit-identical to one run) and the results give N* per
    /// budget with the verdict. Empty: no check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<u64>,
    /// Class-conditional training (THEORY §10): every model learns the
    /// data's labels, each dropped with this probability, so one network
    /// is both conditional and unconditional. Omitted: unconditional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_uncond: Option<f64>,
    /// Fine-tuning: every trained model starts from this run folder's EMA
    /// weights (its network and sigma_data must be the model's; fresh
    /// optimizer, the cell's own seed, data and N). Omitted: weights drawn
    /// from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Steps between evaluations of each model's training and held-out
    /// losses (THEORY §15), rounded up to a multiple of the logging cadence
    /// (a hundredth of the steps), on `eval_points` fixed draws; the
    /// held-out rows are the sweep's (fresh synthetic rows, or data rows
    /// outside every training set).
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    #[serde(default = "default_eval_points")]
    pub eval_points: usize,
    /// `sample` (the clean example) or `empirical` (the training set's
    /// memorizing denoiser at the noisy input, THEORY §15).
    #[serde(default, skip_serializing_if = "Target::is_sample")]
    pub target: Target,
}

/// How every model and the references are sampled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSettings {
    /// Samples j = 0..samples per model, all from the same initial noise.
    pub samples: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub schedule: Schedule,
    /// `heun` (on `schedule`, for every model) or `native`: each trained
    /// model by its framework's own sampler on `schedule.steps` levels
    /// (THEORY §9); EDM models use Heun either way.
    #[serde(default, skip_serializing_if = "SamplerChoice::is_heun")]
    pub sampler: SamplerChoice,
    /// How the memorizing (empirical) denoiser is sampled on `schedule`:
    /// `heun`, as the models, or `euler`, the convention of the paper's code
    /// (its edm/generate.py switches Heun's correction off for the optimal
    /// denoiser). The two send some trajectories to different training
    /// points (docs/guide/sweeps.md).
    #[serde(default, skip_serializing_if = "MemorizerSampler::is_heun")]
    pub memorizer: MemorizerSampler,
}

/// The sampler of the memorizing denoiser ([`SamplingSettings::memorizer`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemorizerSampler {
    #[default]
    Heun,
    Euler,
}

impl MemorizerSampler {
    pub fn is_heun(&self) -> bool {
        *self == MemorizerSampler::Heun
    }

    fn method(self) -> Method {
        match self {
            MemorizerSampler::Heun => Method::Heun,
            MemorizerSampler::Euler => Method::Euler,
        }
    }
}

/// Which sampler a sweep's models use ([`SamplingSettings::sampler`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerChoice {
    #[default]
    Heun,
    Native,
}

impl SamplerChoice {
    pub fn is_heun(&self) -> bool {
        *self == SamplerChoice::Heun
    }
}

impl SamplingSettings {
    /// Samples z_0 .. z_(count - 1) of this seed through `denoiser`: Heun on
    /// this schedule, in `dtype`, the noise drawn on the CPU.
    pub fn draw(&self, denoiser: &dyn Denoiser, count: usize, dtype: DType) -> Result<Tensor> {
        self.draw_with(
            denoiser,
            &Plan::new(&self.schedule, Method::Heun)?,
            count,
            dtype,
        )
    }

    /// As [`Self::draw`] by `plan`.
    pub fn draw_with(
        &self,
        denoiser: &dyn Denoiser,
        plan: &Plan,
        count: usize,
        dtype: DType,
    ) -> Result<Tensor> {
        let indices: Vec<u64> = (0..count as u64).collect();
        generate(
            denoiser,
            plan,
            self.seed,
            &indices,
            dtype,
            &Device::Cpu,
            None,
        )
    }

    /// How `model` is sampled: the memorizer by [`Self::memorizer`], a model
    /// of another framework than EDM by its own sampler when `sampler =
    /// "native"`, the rest by Heun, all on this schedule.
    pub fn plan(&self, model: &Model) -> Result<Plan> {
        match model {
            Model::Empirical => Plan::new(&self.schedule, self.memorizer.method()),
            Model::Trained { framework, .. }
                if self.sampler == SamplerChoice::Native && !framework.is_edm() =>
            {
                framework.native(self.schedule.steps)
            }
            Model::Trained { .. } => Plan::new(&self.schedule, Method::Heun),
        }
    }
}

/// How samples and denoisers are scored (defaults: [`super::criteria`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSettings {
    #[serde(default = "super::criteria::rp_similarity")]
    pub rp_similarity: Similarity,
    #[serde(default = "super::criteria::rp_threshold")]
    pub rp_threshold: f64,
    /// Noise levels of the denoiser gaps (THEORY §7).
    #[serde(default = "default_gap_sigmas")]
    pub gap_sigmas: Vec<f64>,
    /// Fresh clean points y for the gaps.
    #[serde(default = "default_gap_points")]
    pub gap_points: usize,
    #[serde(default = "default_resamples")]
    pub resamples: usize,
}

impl MetricSettings {
    /// RP of samples `a` against `b` (rows paired by noise) by this
    /// criterion on raw features, with its bootstrap interval from `seed`
    /// (THEORY §7).
    pub fn rp(&self, a: &Tensor, b: &Tensor, seed: u64) -> Result<Estimate> {
        let bootstrap = Bootstrap {
            resamples: self.resamples,
            seed,
        };
        let score = reproducibility(
            a,
            b,
            self.rp_similarity,
            self.rp_threshold,
            "raw",
            bootstrap,
        )?;
        Ok(Estimate::from(&score))
    }
}

/// A sweep's training defaults (TOML configs may omit every field but
/// steps, batch and lr); EDM's P_mean and P_std (THEORY §3).
impl Default for TrainSettings {
    /// The hyperparameters a sweep shares with a single run default to
    /// [`TrainOptions`]'s.
    fn default() -> Self {
        let run = TrainOptions::default();
        TrainSettings {
            steps: run.steps,
            batch: run.batch,
            lr: run.lr,
            warmup: run.warmup,
            weight_decay: run.weight_decay,
            clip: run.clip,
            ema_decay: run.ema_decay,
            p_mean: run.p_mean,
            p_std: run.p_std,
            sigma_data: None,
            budgets: Vec::new(),
            p_uncond: None,
            init: None,
            eval_every: run.eval_every,
            eval_points: run.eval_points,
            target: run.target,
        }
    }
}

fn default_eval_every() -> u64 {
    TrainSettings::default().eval_every
}
fn default_eval_points() -> usize {
    TrainSettings::default().eval_points
}

fn default_warmup() -> u64 {
    TrainSettings::default().warmup
}
fn default_clip() -> f64 {
    TrainSettings::default().clip
}
fn default_ema() -> f64 {
    TrainSettings::default().ema_decay
}
fn default_p_mean() -> f64 {
    TrainSettings::default().p_mean
}
fn default_p_std() -> f64 {
    TrainSettings::default().p_std
}
fn default_gap_sigmas() -> Vec<f64> {
    vec![0.05, 0.2, 1.0]
}
fn default_gap_points() -> usize {
    512
}
fn default_resamples() -> usize {
    1000
}
