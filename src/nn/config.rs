//! The configuration of a training run: every hyperparameter, validated once.

use serde::{Deserialize, Serialize};

use super::init::InitFrom;
use super::optim::AdamWConfig;
use super::Arch;
use crate::framework::{Framework, Parameterisation};
use crate::{Error, Result};

/// How the examples of a batch are chosen (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    Replacement,
    Epochs,
}

/// What the network regresses on (THEORY §15): the clean example the noisy
/// input was made from, or the training set's empirical denoiser at the noisy
/// input, the minimum-variance target of the same loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Sample,
    Empirical,
}

impl Target {
    pub fn is_sample(&self) -> bool {
        *self == Target::Sample
    }

    /// Its name in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Target::Sample => "sample",
            Target::Empirical => "empirical",
        }
    }
}

/// Everything a training run depends on; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Where the examples came from (recorded, not re-read: `train.npy` holds them).
    pub data: String,
    /// Training-set size N, and the seed of the nested-subset permutation.
    pub n: usize,
    pub subset_seed: u64,
    /// Shape of one example: \[n\] or \[C, H, W\].
    pub sample_shape: Vec<usize>,
    pub arch: Arch,
    /// The training framework (THEORY §9); absent in a config: EDM.
    #[serde(default, skip_serializing_if = "Framework::is_edm")]
    pub framework: Framework,
    /// EDM's sigma_data and log-normal noise-level distribution (THEORY §3).
    pub sigma_data: f64,
    pub p_mean: f64,
    pub p_std: f64,
    pub steps: u64,
    pub batch: usize,
    pub sampling: Sampling,
    /// Peak learning rate, reached linearly over `warmup` steps.
    pub lr: f64,
    pub warmup: u64,
    pub adam: AdamWConfig,
    /// Maximum global gradient norm.
    pub clip: f64,
    /// EMA decay, used as min(ema_decay, (1 + t) / (10 + t)) at update t.
    pub ema_decay: f64,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
    /// The held-out loss (THEORY §15) every `eval_every` steps on
    /// `eval_points` fixed draws; absent in a config: never (0 points).
    #[serde(default)]
    pub eval_every: u64,
    #[serde(default)]
    pub eval_points: usize,
    /// The regression target; absent in a config: the clean example.
    #[serde(default, skip_serializing_if = "Target::is_sample")]
    pub target: Target,
    /// Class-conditional training (THEORY §10); absent for an unconditional run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelConditioning>,
    /// The run whose weights this one starts from (fine-tuning); absent for
    /// weights drawn from `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitFrom>,
    /// The run folder whose EMA network a distilling framework learns
    /// from (THEORY §16); absent for every other framework.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<std::path::PathBuf>,
}

/// The training set's labels 0..classes (kept in the run folder as
/// train_labels.npy), each replaced by "no class" with probability
/// `p_uncond` per example and step, so one network is both conditional and
/// unconditional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConditioning {
    pub classes: usize,
    pub p_uncond: f64,
}

impl LabelConditioning {
    /// Classes 0..=max of every label of the data set (not only the training
    /// subset's, so all the N of a sweep build the same network).
    pub fn for_labels(labels: &[u32], p_uncond: f64) -> Self {
        Self {
            classes: labels.iter().max().map_or(1, |&m| m as usize + 1),
            p_uncond,
        }
    }
}

/// A [`TrainConfig`] whose every value has been checked, the only kind the
/// trainer accepts ([`TrainConfig::check`]; after linfa's checked parameters).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedTrainConfig(TrainConfig);

impl std::ops::Deref for CheckedTrainConfig {
    type Target = TrainConfig;
    fn deref(&self) -> &TrainConfig {
        &self.0
    }
}

impl TrainConfig {
    /// Checks every value once, up front, naming the bad one.
    pub fn check(self) -> Result<CheckedTrainConfig> {
        self.validate()?;
        Ok(CheckedTrainConfig(self))
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| match v.is_finite() && v > 0.0 {
            true => Ok(()),
            false => Err(Error::invalid(name, v, "must be a finite number > 0")),
        };
        // TOML integers are i64, hence the upper bound.
        let at_least_one = |name: &str, v: u64| match (1..=i64::MAX as u64).contains(&v) {
            true => Ok(()),
            false => Err(Error::invalid(name, v, "must be between 1 and 2^63 - 1")),
        };
        positive("sigma_data", self.sigma_data)?;
        positive("p_std", self.p_std)?;
        positive("lr", self.lr)?;
        positive("clip", self.clip)?;
        positive("adam.eps", self.adam.eps)?;
        if !self.p_mean.is_finite() {
            return Err(Error::invalid("p_mean", self.p_mean, "must be finite"));
        }
        for (name, beta) in [
            ("adam.beta1", self.adam.beta1),
            ("adam.beta2", self.adam.beta2),
            ("ema_decay", self.ema_decay),
        ] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::invalid(name, beta, "must lie in [0, 1)"));
            }
        }
        if !(self.adam.weight_decay >= 0.0 && self.adam.weight_decay.is_finite()) {
            return Err(Error::invalid(
                "weight_decay",
                self.adam.weight_decay,
                "must be finite and >= 0",
            ));
        }
        at_least_one("n", self.n as u64)?;
        at_least_one("steps", self.steps)?;
        at_least_one("batch", self.batch as u64)?;
        at_least_one("warmup", self.warmup)?;
        at_least_one("checkpoint_every", self.checkpoint_every)?;
        at_least_one("log_every", self.log_every)?;
        if self.eval_points > 0 {
            at_least_one("eval_every", self.eval_every)?;
        }
        if self.target == Target::Empirical && self.labels.is_some() {
            return Err(Error::invalid(
                "target",
                "empirical",
                "is the unconditional memorizer's; a class-conditional run regresses on its examples",
            ));
        }
        if self.target == Target::Empirical && self.framework.trains_on_pairs() {
            return Err(Error::invalid(
                "target",
                "empirical",
                format!(
                    "{} trains on pairs of its own outputs, not on a regression target",
                    self.framework
                ),
            ));
        }
        match (self.framework.distills(), &self.teacher) {
            (true, None) => {
                return Err(Error::invalid(
                    "teacher",
                    "absent",
                    format!(
                        "{} learns from a trained run: give --teacher RUN",
                        self.framework
                    ),
                ))
            }
            (false, Some(teacher)) => {
                return Err(Error::invalid(
                    "teacher",
                    teacher.display(),
                    format!(
                        "only consistency-distillation learns from a teacher, not {}",
                        self.framework
                    ),
                ))
            }
            _ => {}
        }
        if let Some(labels) = &self.labels {
            at_least_one("classes", labels.classes as u64)?;
            if !(0.0..=1.0).contains(&labels.p_uncond) {
                return Err(Error::invalid(
                    "p_uncond",
                    labels.p_uncond,
                    "must lie in [0, 1]",
                ));
            }
        }
        self.arch.input_shape(&self.sample_shape).map(|_| ())
    }

    /// Labels exactly when the config is class-conditional: one per training
    /// example, each below the class count.
    pub fn check_labels(&self, labels: Option<&[u32]>) -> Result<()> {
        match (&self.labels, labels) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(Error::invalid(
                "labels",
                "missing",
                "a class-conditional run needs them",
            )),
            (None, Some(_)) => Err(Error::invalid(
                "labels",
                "given",
                "the config has no classes",
            )),
            (Some(c), Some(labels)) => {
                if labels.len() != self.n {
                    return Err(Error::shape("labels", self.n, labels.len()));
                }
                match labels.iter().find(|&&l| l as usize >= c.classes) {
                    Some(bad) => Err(Error::invalid(
                        "label",
                        bad,
                        format!("the config has classes 0..{}", c.classes),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The framework's adapter to the VE denoiser, with this run's EDM settings.
    pub fn parameterisation(&self) -> std::sync::Arc<dyn Parameterisation> {
        self.framework
            .parameterisation(self.sigma_data, self.p_mean, self.p_std)
    }

    /// Learning rate of the update after `step` steps: linear warm-up, then constant.
    pub fn lr_at(&self, step: u64) -> f64 {
        self.lr * ((step + 1) as f64 / self.warmup as f64).min(1.0)
    }
}
