//! A sweep's configuration, read from TOML: the data, the grid of training-set
//! sizes and models, how each model is trained and sampled, and how it is scored.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cell::{Estimate, Model};
use crate::data::{ImageImport, SyntheticSpec};
use crate::denoise::Denoiser;
use crate::framework::Framework;
use crate::io::read;
use crate::metrics::{reproducibility, Bootstrap, Similarity};
use crate::nn::{Arch, TrainOptions};
use crate::sample::{generate, Method, Plan, Schedule};
use crate::{Error, Result};

/// Where the examples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// A synthetic distribution generated on the fly; it also gives the true denoiser.
    pub synthetic: Option<SyntheticSpec>,
    /// Or examples from a file (.npy, or a folder holding data.npy), or
    /// images in any format of [`ImageImport`] when `import` says how.
    pub file: Option<PathBuf>,
    /// How to read `file` as images, e.g. `{ format = "idx", size = [8, 8] }`.
    pub import: Option<ImageImport>,
    /// The examples' class labels (THEORY §10) for `file` data, when neither
    /// `import` reads them nor `file` is a folder holding labels.npy;
    /// synthetic draws carry their component as the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Seed of the synthetic distribution and of its draws.
    #[serde(default)]
    pub seed: u64,
    /// Rows drawn from the synthetic distribution (default: the largest N).
    pub rows: Option<usize>,
    /// Shape of one synthetic example, e.g. [1, 8, 8] to train a U-Net on
    /// ambient-64 data; its product must equal the ambient dimension.
    pub shape: Option<Vec<usize>>,
}

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

/// One model of a sweep: the architecture's fields (`kind = "mlp"`, ...)
/// and, optionally, `framework = "vp-eps"` (THEORY §9; default EDM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    #[serde(default, skip_serializing_if = "Framework::is_edm")]
    pub framework: Framework,
    #[serde(flatten)]
    pub arch: Arch,
}

impl From<Arch> for ModelSpec {
    /// The architecture trained with EDM.
    fn from(arch: Arch) -> Self {
        ModelSpec {
            framework: Framework::Edm,
            arch,
        }
    }
}

/// How a sweep's training sets of one size relate ([`SweepConfig::split`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Nested,
    Disjoint,
}

impl Split {
    pub fn is_nested(&self) -> bool {
        *self == Split::Nested
    }
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

/// A whole sweep: every (N, model, seed) cell of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub name: String,
    pub data: DataSource,
    /// Training-set sizes N (nested subsets).
    pub ns: Vec<usize>,
    #[serde(default)]
    pub subset_seed: u64,
    /// Models (an architecture and its training framework); each is trained
    /// at every N with every seed.
    pub models: Vec<ModelSpec>,
    /// How the training sets of one N relate: `nested` (every model learns
    /// the same first N of one permutation) or `disjoint` (the seed at
    /// position k of `seeds` learns the permutation's k-th block of N).
    #[serde(default, skip_serializing_if = "Split::is_nested")]
    pub split: Split,
    /// Seeds of the weights and batches.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    pub train: TrainSettings,
    pub sampling: SamplingSettings,
    pub metrics: MetricSettings,
}

/// The training defaults, the one place they are written: TOML configs
/// (fields other than steps, batch and lr may be omitted) and the
/// `regimes train` flags read them. EDM's P_mean and P_std (THEORY §3).
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
        }
    }
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
fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// Reads the TOML file `path` into a `T`; errors name the file and the field.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = String::from_utf8(read(path)?).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    parse_toml(&text, path)
}

fn parse_toml<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::parse(origin, e))
}

impl SweepConfig {
    /// Reads and validates a TOML file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        Self::checked(load_toml(path)?, path)
    }

    /// Parses TOML `text` (`origin` names it in errors) and validates it.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        Self::checked(parse_toml(text, origin)?, origin)
    }

    /// `self` validated (what [`Self::load`] and [`Self::parse`] apply), for a
    /// sweep read as part of another config; errors name `origin`.
    pub fn checked(self, origin: &Path) -> Result<Self> {
        self.validate().map_err(|e| Error::at(origin, e))?;
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        if self.data.synthetic.is_some() == self.data.file.is_some() {
            return Err(Error::invalid(
                "data",
                "synthetic and file",
                "give exactly one of data.synthetic or data.file",
            ));
        }
        if self.data.import.is_some() && self.data.file.is_none() {
            return Err(Error::invalid(
                "data.import",
                "without data.file",
                "import says how to read data.file; give the file",
            ));
        }
        if self.data.labels.is_some() && self.data.file.is_none() {
            return Err(Error::invalid(
                "data.labels",
                "without data.file",
                "synthetic data carries its components as labels",
            ));
        }
        if let Some(p) = self.train.p_uncond {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::invalid("train.p_uncond", p, "must lie in [0, 1]"));
            }
        }
        if self.ns.is_empty() || self.ns.contains(&0) {
            return Err(Error::invalid(
                "ns",
                format!("{:?}", self.ns),
                "need sizes >= 1",
            ));
        }
        for (name, empty) in [
            ("models", self.models.is_empty()),
            ("seeds", self.seeds.is_empty()),
            ("metrics.gap_sigmas", self.metrics.gap_sigmas.is_empty()),
        ] {
            if empty {
                return Err(Error::invalid(name, "[]", "must list at least one"));
            }
        }
        if self.sampling.samples < 2 {
            return Err(Error::invalid(
                "sampling.samples",
                self.sampling.samples,
                "need at least 2",
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                &self.name,
                "use a plain folder name",
            ));
        }
        let budgets = &self.train.budgets;
        if !budgets.is_empty()
            && (budgets.windows(2).any(|w| w[0] >= w[1])
                || budgets[0] == 0
                || budgets.last() != Some(&self.train.steps))
        {
            return Err(Error::invalid(
                "train.budgets",
                format!("{budgets:?}"),
                format!(
                    "list increasing step counts ending at train.steps = {}",
                    self.train.steps
                ),
            ));
        }
        self.sampling.schedule.validate()?;
        self.metrics
            .gap_sigmas
            .iter()
            .try_for_each(|&s| crate::error::check_sigma(s))
    }

    /// Rows of the synthetic data set: enough for the largest N.
    pub fn synthetic_rows(&self) -> usize {
        let largest = self.ns.iter().copied().max().unwrap_or(1);
        self.data.rows.unwrap_or(largest).max(largest)
    }
}
