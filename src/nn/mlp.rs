//! A noise-conditioned residual MLP for vector data `[B, n]`.

use std::any::Any;

use candle_core::{Tensor, D};
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
///
/// K MLPs of one size stack into one ([`Mlp::stack`]) whose layers carry a
/// leading model axis: it maps x \[K, B, n\] and c_noise \[K, B\], each
/// model its own slice, by the same kernels on each slice as alone.
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

impl Mlp {
    /// The MLPs `networks` as one with a leading model axis on every weight
    /// (the stacked weights stay in the graph, so each model's gradients
    /// reach its own weights); None unless all are unconditional MLPs of
    /// one size.
    pub fn stack(networks: &[&dyn Network]) -> Option<Result<Mlp>> {
        let mlps: Vec<&Mlp> = networks
            .iter()
            .map(|&net| (net as &dyn Any).downcast_ref::<Mlp>())
            .collect::<Option<_>>()?;
        let first = *mlps.first()?;
        let same_size = |m: &&Mlp| {
            m.width == first.width && m.blocks.len() == first.blocks.len() && m.classes.is_none()
        };
        if !mlps.iter().all(same_size) {
            return None;
        }
        let layer = |pick: &dyn Fn(&Mlp) -> &Linear| -> Result<Linear> {
            let weights: Vec<&Tensor> = mlps.iter().map(|&m| pick(m).weight()).collect();
            let biases: Option<Vec<&Tensor>> = mlps.iter().map(|&m| pick(m).bias()).collect();
            Ok(Linear::new(
                Tensor::stack(&weights, 0)?,
                biases.map(|b| Tensor::stack(&b, 0)).transpose()?,
            ))
        };
        let stacked = || -> Result<Mlp> {
            Ok(Mlp {
                input: layer(&|m| &m.input)?,
                embed: layer(&|m| &m.embed)?,
                modulate: layer(&|m| &m.modulate)?,
                blocks: (0..first.blocks.len())
                    .map(|i| Ok((layer(&|m| &m.blocks[i].0)?, layer(&|m| &m.blocks[i].1)?)))
                    .collect::<Result<_>>()?,
                output: layer(&|m| &m.output)?,
                classes: None,
                width: first.width,
            })
        };
        Some(stacked())
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
            let e = modulation.narrow(D::Minus1, i * self.width, self.width)?;
            let inner = silu(&(linear_forward(fc1, &silu(&h)?)? + e)?)?;
            h = (h + linear_forward(fc2, &inner)?)?;
        }
        linear_forward(&self.output, &silu(&h)?)
    }
}
