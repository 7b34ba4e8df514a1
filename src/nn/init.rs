//! Starting a run from another run's weights (fine-tuning, THEORY §14): the parent's
//! EMA or raw weights at its latest checkpoint, in the same network, with a
//! fresh optimizer, the child's own seed for batches and noise and its own
//! training set. The child records where its weights came from and a hash
//! of them, so a result can be traced to its parent.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::checkpoint::{checkpoint_name, group, read_checkpoint, read_state, Weights};
use super::config::TrainConfig;
use crate::{Error, Result};

/// The parent of a fine-tuned run, as its config.toml records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitFrom {
    /// The parent's run folder, as given.
    pub run: String,
    pub weights: Weights,
    /// The parent's step whose weights were taken.
    pub step: u64,
    /// FNV-1a (64 bits) of those weights: each tensor's name and its f32
    /// values in little-endian bytes, in name order.
    pub hash: String,
}

impl InitFrom {
    /// The parent run at `run` and its config, whose network the child takes.
    pub fn read(run: &Path, weights: Weights) -> Result<(InitFrom, TrainConfig)> {
        let state = read_state(run)?;
        let values = parent_weights(run, weights, state.step)?;
        let init = InitFrom {
            run: run.display().to_string(),
            weights,
            step: state.step,
            hash: weights_hash(&values)?,
        };
        Ok((init, state.config))
    }

    /// The recorded weights, read again from the parent's checkpoint of
    /// that step; an error if they no longer hash the same.
    pub fn load(&self) -> Result<BTreeMap<String, Tensor>> {
        let values = parent_weights(Path::new(&self.run), self.weights, self.step)?;
        let hash = weights_hash(&values)?;
        match hash == self.hash {
            true => Ok(values),
            false => Err(Error::invalid(
                "--init",
                &self.run,
                format!(
                    "step {} now holds weights {hash}, not {} as recorded",
                    self.step, self.hash
                ),
            )),
        }
    }

    /// An error naming both sides unless `child` can take the parent's
    /// weights: the same network, framework, data shape and classes.
    pub fn check_compatible(&self, parent: &TrainConfig, child: &TrainConfig) -> Result<()> {
        let classes = |c: &TrainConfig| c.labels.as_ref().map(|l| l.classes);
        let sides = [
            (
                "architecture",
                format!("{:?}", parent.arch),
                format!("{:?}", child.arch),
            ),
            (
                "framework",
                parent.framework.name().into(),
                child.framework.name().into(),
            ),
            (
                "example shape",
                format!("{:?}", parent.sample_shape),
                format!("{:?}", child.sample_shape),
            ),
            (
                "classes",
                format!("{:?}", classes(parent)),
                format!("{:?}", classes(child)),
            ),
        ];
        match sides.into_iter().find(|(_, p, c)| p != c) {
            None => Ok(()),
            Some((what, p, c)) => Err(Error::invalid(
                "--init",
                &self.run,
                format!("has {what} {p}, this run {c}: fine-tuning keeps the parent's network"),
            )),
        }
    }
}

/// The `weights` group of the parent's checkpoint at `step`.
fn parent_weights(run: &Path, weights: Weights, step: u64) -> Result<BTreeMap<String, Tensor>> {
    let path = run.join(checkpoint_name(step));
    let groups = read_checkpoint(&path)?;
    Ok(group(&groups, weights.group(), &path)?.clone())
}

/// See [`InitFrom::hash`].
pub fn weights_hash(values: &BTreeMap<String, Tensor>) -> Result<String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, tensor) in values {
        eat(name.as_bytes());
        for v in tensor
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?
        {
            eat(&v.to_le_bytes());
        }
    }
    Ok(format!("fnv1a64:{hash:016x}"))
}
