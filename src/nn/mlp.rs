//! A noise-conditioned residual MLP for vector data `[B, n]`.

use candle_core::Tensor;
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::embedding::{fourier_embedding, with_classes, zero_linear, ClassEmbedding};
use super::ops::{linear_forward, silu};
use super::Network;
use crate::{Error, Result};

/// Width and number of residual blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    pub width: usize,
    pub depth: usize,
}

/// x -> W -> `depth` blocks h + L2(silu(L1(silu(h)) + e_i)) -> n, where e_i is
/// block i's slice of one projection of the noise embedding (one matmul for
/// all blocks: small models are dominated by per-op overhead).
pub struct Mlp {
    input: Linear,
    embed: Linear,
    modulate: Linear,
    blocks: Vec<(Linear, Linear)>,
    output: Linear,
    classes: Option<ClassEmbedding>,
    width: usize,
}

impl Mlp {
    pub fn new(
        dim: usize,
        config: &MlpConfig,
        classes: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let MlpConfig { width, depth } = *config;
        if width == 0 || depth == 0 || dim == 0 {
            return Err(Error::invalid(
                "MLP size",
                format!("width {width}, depth {depth}, data dimension {dim}"),
                "all must be at least 1",
            ));
        }
        let blocks = (0..depth)
            .map(|i| {
                let vb = vb.pp(format!("block{i}"));
                Ok((
                    linear(width, width, vb.pp("fc1"))?,
                    linear(width, width, vb.pp("fc2"))?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Mlp {
            input: linear(dim, width, vb.pp("input"))?,
            embed: linear(width, width, vb.pp("embed"))?,
            modulate: linear(width, depth * width, vb.pp("modulate"))?,
            blocks,
            output: zero_linear(width, dim, vb.pp("output"))?,
            classes: classes
                .map(|k| ClassEmbedding::new(k, width, vb.clone()))
                .transpose()?,
            width,
        })
    }
}

impl Network for Mlp {
    fn forward(&self, x: &Tensor, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let features = fourier_embedding(c_noise, self.width)?;
        let features = with_classes(features, self.classes.as_ref(), labels)?;
        let emb = silu(&linear_forward(&self.embed, &features)?)?;
        let modulation = linear_forward(&self.modulate, &emb)?;
        let mut h = linear_forward(&self.input, x)?;
        for (i, (fc1, fc2)) in self.blocks.iter().enumerate() {
            let e = modulation.narrow(1, i * self.width, self.width)?;
            let inner = silu(&(linear_forward(fc1, &silu(&h)?)? + e)?)?;
            h = (h + linear_forward(fc2, &inner)?)?;
        }
        linear_forward(&self.output, &silu(&h)?)
    }
}
