//! A local convolutional denoiser (THEORY §12): residual blocks of 3x3
//! convolutions at full resolution, no down-sampling, no attention, and
//! norms over each pixel's channels, so each output pixel sees exactly a
//! square of the input. This is the kind of network (Kamb and Ganguli's
//! ResNets) whose samples the patch closed forms are meant to predict.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::blocks::{conv, zero_conv, Conv, Locality, NoiseEmbedding, Norm, Padding, ResBlock};
use super::Network;
use crate::{Error, Result};

/// Channels, residual blocks, and how the convolutions pad.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    pub width: usize,
    pub depth: usize,
    #[serde(default)]
    pub padding: Padding,
}

impl CnnConfig {
    /// The side of the square of input pixels one output pixel depends on:
    /// each 3x3 convolution (the input layer, two per block, the output
    /// layer) widens it by one pixel on every side.
    pub fn receptive_field(&self) -> usize {
        let convolutions = 2 * self.depth + 2;
        2 * convolutions + 1
    }
}

/// Input 3x3 convolution to `width` channels, `depth` residual blocks,
/// norm, SiLU and a zero-initialised 3x3 convolution back to the image's channels.
pub struct Cnn {
    embedding: NoiseEmbedding,
    input: Conv,
    blocks: Vec<ResBlock>,
    out_norm: Norm,
    output: Conv,
}

impl Cnn {
    /// A CNN for images of `shape` = [C, H, W].
    pub fn new(
        shape: &[usize],
        config: &CnnConfig,
        classes: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let &[channels, _, _] = shape else {
            return Err(Error::shape(
                "CNN image shape",
                "[C, H, W]",
                format!("{shape:?}"),
            ));
        };
        if config.width == 0 || config.depth == 0 {
            return Err(Error::invalid(
                "CNN config",
                format!("{config:?}"),
                "width and depth must be at least 1",
            ));
        }
        let (width, local) = (config.width, Locality::Local(config.padding));
        let blocks = (0..config.depth)
            .map(|b| ResBlock::new(width, width, 4 * width, local, vb.pp(format!("block{b}"))))
            .collect::<Result<_>>()?;
        Ok(Cnn {
            embedding: NoiseEmbedding::new(width, classes, vb.clone())?,
            input: conv(channels, width, 3, local, vb.pp("input"))?,
            blocks,
            out_norm: Norm::new(width, local, vb.pp("out_norm"))?,
            output: zero_conv(width, channels, local, vb.pp("output"))?,
        })
    }
}

impl Network for Cnn {
    fn forward(&self, x: &Tensor, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let emb = self.embedding.forward(c_noise, labels)?;
        let mut h = self.input.forward(x)?;
        for block in &self.blocks {
            h = block.forward(&h, &emb)?;
        }
        self.output.forward(&self.out_norm.forward_silu(&h)?)
    }
}
