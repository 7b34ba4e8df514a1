//! The hyperparameters of one training run, with their defaults in one
//! `Default`: `regimes train` reads them as flags (clap, `cli` feature), the
//! Python package as keyword arguments (serde), and [`TrainOptions::config`]
//! turns them into the run's [`TrainConfig`].

use serde::{Deserialize, Serialize};

use super::checkpoint::Weights;
use super::config::{Sampling, Target, TrainConfig};
use super::init::InitFrom;
use super::optim::AdamWConfig;
use super::{Arch, Padding};
use crate::data::sigma_data;
use crate::framework::Framework;
use crate::{Error, Result};

/// EDM's sigma_data (THEORY §3): a number, or `auto` for the training set's
/// per-coordinate standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SigmaData {
    Auto,
    Value(f64),
}

impl std::str::FromStr for SigmaData {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(SigmaData::Auto),
            s => s
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .map(SigmaData::Value)
                .ok_or_else(|| Error::invalid("sigma-data", s, "use a positive number or auto")),
        }
    }
}

impl std::fmt::Display for SigmaData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigmaData::Auto => f.write_str("auto"),
            SigmaData::Value(v) => write!(f, "{v}"),
        }
    }
}

/// A number or "auto", as written in TOML, JSON or a Python call.
impl Serialize for SigmaData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SigmaData::Auto => s.serialize_str("auto"),
            SigmaData::Value(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for SigmaData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Number(f64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Number(v) => v.to_string().parse(),
            Given::Text(t) => t.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Every hyperparameter of a fresh run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainOptions {
    /// Seed of the permutation whose first N rows form the training set.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().subset_seed))]
    pub subset_seed: u64,
    /// The network: mlp, unet, dit or cnn (local: no down-sampling, per-pixel norms).
    #[cfg_attr(feature = "cli", arg(long, default_value = "mlp", value_parser = clap::builder::PossibleValuesParser::new(Arch::KINDS)))]
    pub arch: String,
    /// MLP hidden width, U-Net base channels (UNet-64/128/256), DiT token width or CNN channels.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().width))]
    pub width: usize,
    /// MLP, DiT or CNN blocks, or U-Net residual blocks per resolution [default: 4 for mlp, dit and cnn, 1 for unet].
    #[cfg_attr(feature = "cli", arg(long))]
    pub depth: Option<usize>,
    /// U-Net channel multipliers per resolution.
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "1,2,2", value_delimiter = ',')
    )]
    pub multipliers: Vec<usize>,
    /// U-Net without self-attention at the lowest resolution.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_attention: bool,
    /// CNN padding: zero, or circular (the image wraps around, as circular ELS assumes).
    #[cfg_attr(feature = "cli", arg(long, default_value = "zero"))]
    pub padding: Padding,
    /// Training framework (THEORY §9): vp-eps is DDPM's epsilon-prediction,
    /// flow rectified flow with logit-normal t.
    #[cfg_attr(feature = "cli", arg(long, default_value = "edm"))]
    pub framework: Framework,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().steps))]
    pub steps: u64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().batch))]
    pub batch: usize,
    /// replacement (each batch draws uniformly with replacement) or epochs
    /// (batches walk through one seeded permutation per epoch).
    #[cfg_attr(feature = "cli", arg(long, default_value = "replacement", value_parser = crate::error::parse_variant::<Sampling>))]
    pub sampling: Sampling,
    /// Peak learning rate.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().lr))]
    pub lr: f64,
    /// Steps of linear learning-rate warm-up.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().warmup))]
    pub warmup: u64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().weight_decay))]
    pub weight_decay: f64,
    /// Maximum global gradient norm.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().clip))]
    pub clip: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().ema_decay))]
    pub ema_decay: f64,
    /// EDM's sigma_data, or `auto` for the training set's per-coordinate standard deviation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().sigma_data))]
    pub sigma_data: SigmaData,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().p_mean, allow_negative_numbers = true))]
    pub p_mean: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().p_std))]
    pub p_std: f64,
    /// Seed of the weights, batches and noise.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().seed))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().checkpoint_every))]
    pub checkpoint_every: u64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().log_every))]
    pub log_every: u64,
    /// Steps between evaluations of the training and held-out losses on fixed draws.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().eval_every))]
    pub eval_every: u64,
    /// Fixed (example, noise level, noise) draws of those losses; 0 turns them off.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().eval_points))]
    pub eval_points: usize,
    /// sample (regress on the clean example) or empirical (on the training
    /// set's memorizing denoiser at the noisy input: same minimizer, less variance).
    #[cfg_attr(feature = "cli", arg(long, default_value = "sample", value_parser = crate::error::parse_variant::<Target>))]
    pub target: Target,
    /// With labels: the probability that a batch example's label is
    /// dropped, so the network also learns the unconditional denoiser.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = TrainOptions::default().p_uncond))]
    pub p_uncond: f64,
    /// Fine-tune: start from the weights of this run folder (its latest
    /// checkpoint) with a fresh optimizer; the network (architecture,
    /// framework, sigma_data) is the parent's.
    #[cfg_attr(feature = "cli", arg(long))]
    pub init: Option<std::path::PathBuf>,
    /// With --init: ema (the parent's moving average) or model (its raw weights).
    #[cfg_attr(feature = "cli", arg(long, default_value = "ema", value_parser = crate::error::parse_variant::<Weights>))]
    pub init_weights: Weights,
    /// With --framework consistency-distillation: the trained run (its EMA
    /// network, any framework) whose ODE steps it distills.
    #[cfg_attr(feature = "cli", arg(long))]
    pub teacher: Option<std::path::PathBuf>,
}

impl TrainOptions {
    /// The options that choose the network, which a fine-tuned run takes
    /// from its parent (given with `init`, they are an error).
    const NETWORK: [&'static str; 8] = [
        "arch",
        "width",
        "depth",
        "multipliers",
        "no_attention",
        "padding",
        "framework",
        "sigma_data",
    ];

    /// An error if `init` is set and `given` (the options the caller was
    /// given, by field name) names one that chooses the network; `spell`
    /// writes an option as the caller's user wrote it (`--width`, `width`).
    pub fn check_init_alone<'a>(
        &self,
        given: impl IntoIterator<Item = &'a str>,
        spell: impl Fn(&str) -> String,
    ) -> Result<()> {
        let Some(run) = &self.init else {
            return Ok(());
        };
        match given.into_iter().find(|g| Self::NETWORK.contains(g)) {
            None => Ok(()),
            Some(name) => Err(Error::invalid(
                spell(name),
                format!("given with {}", spell("init")),
                format!("a fine-tuned run keeps the network of {}", run.display()),
            )),
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            subset_seed: 0,
            arch: "mlp".into(),
            width: 256,
            depth: None,
            multipliers: vec![1, 2, 2],
            no_attention: false,
            padding: Padding::Zero,
            framework: Framework::EDM,
            steps: 10_000,
            batch: 256,
            sampling: Sampling::Replacement,
            lr: 1e-3,
            warmup: 200,
            weight_decay: 0.0,
            clip: 1.0,
            ema_decay: 0.999,
            sigma_data: SigmaData::Value(0.5),
            p_mean: -1.2,
            p_std: 1.2,
            seed: 0,
            checkpoint_every: 1000,
            log_every: 10,
            eval_every: 100,
            eval_points: 256,
            target: Target::Sample,
            p_uncond: 0.1,
            init: None,
            init_weights: Weights::Ema,
            teacher: None,
        }
    }
}

impl TrainOptions {
    /// The config of a fresh run on the training set `train` `[N, ...]`
    /// (recorded as coming from `data`), unconditional.
    /// With `init`, the network is the parent's.
    pub fn config(&self, data: &str, train: &candle_core::Tensor) -> Result<TrainConfig> {
        let (arch, framework, sigma_data, init) = match &self.init {
            Some(run) => {
                let (init, parent) = InitFrom::read(run, self.init_weights)?;
                (parent.arch, parent.framework, parent.sigma_data, Some(init))
            }
            None => {
                let arch = Arch::of_kind(
                    &self.arch,
                    self.width,
                    self.depth,
                    self.multipliers.clone(),
                    !self.no_attention,
                    self.padding,
                )?;
                let sigma_data = match self.sigma_data {
                    SigmaData::Auto => sigma_data(train)?,
                    SigmaData::Value(v) => v,
                };
                (arch, self.framework, sigma_data, None)
            }
        };
        Ok(TrainConfig {
            data: data.to_string(),
            n: train.dim(0)?,
            subset_seed: self.subset_seed,
            sample_shape: train.dims()[1..].to_vec(),
            arch,
            framework,
            sigma_data,
            p_mean: self.p_mean,
            p_std: self.p_std,
            steps: self.steps,
            batch: self.batch,
            sampling: self.sampling,
            lr: self.lr,
            warmup: self.warmup,
            adam: AdamWConfig {
                weight_decay: self.weight_decay,
                ..AdamWConfig::default()
            },
            clip: self.clip,
            ema_decay: self.ema_decay,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            log_every: self.log_every,
            eval_every: self.eval_every,
            eval_points: self.eval_points,
            target: self.target,
            labels: None,
            init,
            teacher: self.teacher.clone(),
        })
    }
}
