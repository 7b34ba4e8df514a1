//! Run folders and checkpoints of a training run:
//!
//! - `config.toml`: the resolved [`TrainConfig`];
//! - `train.npy`: the N training examples actually used;
//! - `metrics.csv`: step, loss, lr, grad_norm, seconds;
//! - `checkpoints/step-XXXXXXXX.safetensors`: tensors `model/*`, `ema/*`,
//!   `adam_m/*`, `adam_v/*` (weights, EMA weights, AdamW moments);
//! - `state.json`: the step, the latest checkpoint, the elapsed time, the
//!   random-stream scheme and the config.
//!
//! Every file is written atomically, and `state.json` last, so it only ever
//! names a checkpoint that is complete on disk.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::train::TrainConfig;
use super::{Params, Precond};
use crate::io::{read, write_atomic};
use crate::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.toml";
pub const TRAIN_FILE: &str = "train.npy";
/// The training examples' labels of a class-conditional run.
pub const TRAIN_LABELS_FILE: &str = "train_labels.npy";
/// The held-out rows of a run's held-out loss (THEORY §15), when it has them.
pub const HELDOUT_FILE: &str = "heldout.npy";
pub const METRICS_FILE: &str = "metrics.csv";
const FORMAT: &str = "diffusion-regimes training state v1";

/// How every random draw of training follows from the seed.
pub const RNG_SCHEME: &str = "weights: ChaCha20 stream (seed, Weights=4, fnv1a(name)); \
    step k: batch indices, ln-sigma and noise from stream (seed, Batch=6, k); \
    epoch e's order from stream (seed, Epoch=7, e); subset from (subset_seed, Subset=5, 0)";

/// What `state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub format: String,
    /// Number of optimizer steps taken.
    pub step: u64,
    /// The checkpoint of this step, relative to the run folder.
    pub checkpoint: String,
    pub elapsed_seconds: f64,
    pub seed: u64,
    pub rng_scheme: String,
    pub config: TrainConfig,
}

impl RunState {
    pub fn new(step: u64, elapsed_seconds: f64, config: TrainConfig) -> Self {
        RunState {
            format: FORMAT.into(),
            step,
            checkpoint: checkpoint_name(step),
            elapsed_seconds,
            seed: config.seed,
            rng_scheme: RNG_SCHEME.into(),
            config,
        }
    }
}

/// The checkpoint of `step`, relative to the run folder.
pub fn checkpoint_name(step: u64) -> String {
    format!("checkpoints/step-{step:08}.safetensors")
}

/// Reads `DIR/state.json`, rejecting files that are not ours.
pub fn read_state(dir: &Path) -> Result<RunState> {
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        return Err(Error::format(
            &path,
            "missing: not a training run folder, or no checkpoint was written yet",
        ));
    }
    let state: RunState = serde_json::from_slice(&read(&path)?)
        .map_err(|e| Error::format(&path, format!("not a training state file: {e}")))?;
    if state.format != FORMAT {
        return Err(Error::format(
            &path,
            format!("format is {:?}, expected {FORMAT:?}", state.format),
        ));
    }
    Ok(state)
}

pub fn write_state(dir: &Path, state: &RunState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state).expect("state serializes");
    write_atomic(&dir.join(STATE_FILE), &json)
}

/// Tensors of one checkpoint grouped by prefix: `groups["ema"]["input.weight"]`.
pub type Groups = BTreeMap<String, BTreeMap<String, Tensor>>;

/// Writes `groups` as one safetensors file at `path`, atomically.
pub fn write_checkpoint(path: &Path, groups: &Groups) -> Result<()> {
    let mut flat = HashMap::new();
    for (group, tensors) in groups {
        for (name, t) in tensors {
            flat.insert(format!("{group}/{name}"), t.to_device(&Device::Cpu)?);
        }
    }
    let bytes = safetensors::serialize(&flat, None)
        .map_err(|e| Error::format(path, format!("cannot serialize: {e}")))?;
    write_atomic(path, &bytes)
}

/// Reads a checkpoint written by [`write_checkpoint`]; a truncated or foreign
/// file is an error naming the file.
pub fn read_checkpoint(path: &Path) -> Result<Groups> {
    let flat = candle_core::safetensors::load_buffer(&read(path)?, &Device::Cpu).map_err(|e| {
        Error::format(
            path,
            format!("not a readable safetensors checkpoint (truncated or foreign?): {e}"),
        )
    })?;
    let mut groups = Groups::new();
    for (key, t) in flat {
        let (group, name) = key.split_once('/').ok_or_else(|| {
            Error::format(path, format!("tensor {key:?} is not a checkpoint tensor"))
        })?;
        groups
            .entry(group.to_string())
            .or_default()
            .insert(name.to_string(), t);
    }
    Ok(groups)
}

/// One group of a checkpoint, or an error naming what is missing.
pub fn group<'a>(
    groups: &'a Groups,
    name: &str,
    path: &Path,
) -> Result<&'a BTreeMap<String, Tensor>> {
    groups.get(name).ok_or_else(|| {
        Error::format(
            path,
            format!("has no {name}/ tensors: not a training checkpoint"),
        )
    })
}

/// Which weights of a run to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// The exponential moving average (what gets sampled).
    Ema,
    /// The raw optimizer iterate.
    Model,
}

impl Weights {
    /// Their group in a checkpoint.
    pub fn group(self) -> &'static str {
        match self {
            Weights::Ema => "ema",
            Weights::Model => "model",
        }
    }
}

/// The trained denoiser of the run in `dir` at its latest checkpoint.
pub fn load_model(dir: &Path, weights: Weights, device: &Device) -> Result<Precond> {
    let state = read_state(dir)?;
    let path: PathBuf = dir.join(&state.checkpoint);
    let groups = read_checkpoint(&path)?;
    // Built from the checkpoint's tensors, never larger than they are.
    let values = group(&groups, weights.group(), &path)?.clone();
    let params = Params::preloaded(values, &path.display().to_string());
    let model = build_with(&state.config, &params, device)?;
    params.check_complete()?;
    Ok(model)
}

/// The network of `config` with parameters initialised from its seed.
pub fn build_model(config: &TrainConfig, device: &Device) -> Result<(Precond, Params)> {
    let params = Params::new(config.seed);
    Ok((build_with(config, &params, device)?, params))
}

/// The network of `config` with its parameters from `params`.
pub(crate) fn build_with(
    config: &TrainConfig,
    params: &Params,
    device: &Device,
) -> Result<Precond> {
    let classes = config.labels.as_ref().map(|l| l.classes);
    let net = config.arch.build(
        &config.sample_shape,
        classes,
        params.var_builder(DType::F32, device),
    )?;
    let shape = config.arch.input_shape(&config.sample_shape)?;
    Ok(Precond::new(net, config.parameterisation(), shape, device).with_classes(classes))
}
