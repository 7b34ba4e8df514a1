//! A small U-Net for images `[B, C, H, W]` in the DDPM++ spirit: residual
//! blocks with group norm and a noise embedding, skip connections between
//! the down and up paths, channel multipliers per resolution, and optional
//! self-attention at the lowest resolution. `base` channels is the one knob
//! between the paper's UNet-64/128/256.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::blocks::{conv, zero_conv, Conv, Locality, NoiseEmbedding, Norm, ResBlock, SKIP_SCALE};
use super::ops::{avg_pool2x, upsample2x};
use super::Network;
use crate::{Error, Result};

/// Channels of the first level, multipliers per level, residual blocks per level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    pub base: usize,
    pub multipliers: Vec<usize>,
    pub blocks: usize,
    pub attention: bool,
}

impl UnetConfig {
    /// DDPM++-like defaults for small images: multipliers [1, 2, 2], one block
    /// per level, attention at the lowest resolution.
    pub fn with_base(base: usize) -> Self {
        UnetConfig {
            base,
            multipliers: vec![1, 2, 2],
            blocks: 1,
            attention: true,
        }
    }
}

/// The U-Net's norms see whole images and its convolutions pad with zeros.
const GLOBAL: Locality = Locality::Global;

/// Single-head self-attention over the H*W positions.
struct Attention {
    norm: Norm,
    qkv: Conv,
    proj: Conv,
}

impl Attention {
    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            norm: Norm::new(channels, GLOBAL, vb.pp("norm"))?,
            qkv: conv(channels, 3 * channels, 1, GLOBAL, vb.pp("qkv"))?,
            proj: conv(channels, channels, 1, GLOBAL, vb.pp("proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let qkv = self
            .qkv
            .forward(&self.norm.forward(x)?)?
            .reshape((b, 3 * c, h * w))?;
        let q = qkv.narrow(1, 0, c)?;
        let k = qkv.narrow(1, c, c)?;
        let v = qkv.narrow(1, 2 * c, c)?;
        // scores[b, i, j] = <q_i, k_j> / sqrt(c), softmax over j.
        let scores = (q.transpose(1, 2)?.matmul(&k)? / (c as f64).sqrt())?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = v.matmul(&weights.transpose(1, 2)?)?.reshape((b, c, h, w))?;
        Ok(((x + self.proj.forward(&out)?)? * SKIP_SCALE)?)
    }
}

/// The U-Net. Down path: blocks per level, then 2x average pooling, every
/// output kept as a skip; middle: block, optional attention, block; up path:
/// one more block per level than going down, each fed the matching skip,
/// then 2x nearest upsampling and a 3x3 convolution.
pub struct Unet {
    embedding: NoiseEmbedding,
    input: Conv,
    down: Vec<Vec<ResBlock>>,
    middle: (ResBlock, Option<Attention>, ResBlock),
    up: Vec<Vec<ResBlock>>,
    upsample: Vec<Conv>,
    out_norm: Norm,
    output: Conv,
}

impl Unet {
    /// A U-Net for images of `shape` = [C, H, W]; H and W must halve cleanly at every level.
    pub fn new(
        shape: &[usize],
        config: &UnetConfig,
        classes: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let channels = image_channels(shape, config)?;
        let levels = config.multipliers.len();
        let base = config.base;
        let emb = 4 * base;
        let mut skip_channels = vec![base];
        let mut c = base;
        let mut down = Vec::new();
        for (l, m) in config.multipliers.iter().enumerate() {
            let mut level = Vec::new();
            for b in 0..config.blocks {
                let name = format!("down{l}.{b}");
                level.push(ResBlock::new(c, base * m, emb, GLOBAL, vb.pp(name))?);
                c = base * m;
                skip_channels.push(c);
            }
            down.push(level);
            if l + 1 < levels {
                skip_channels.push(c); // the pooled map is a skip too (DDPM++)
            }
        }
        let middle = (
            ResBlock::new(c, c, emb, GLOBAL, vb.pp("middle.0"))?,
            match config.attention {
                true => Some(Attention::new(c, vb.pp("middle.attention"))?),
                false => None,
            },
            ResBlock::new(c, c, emb, GLOBAL, vb.pp("middle.1"))?,
        );
        let mut up = Vec::new();
        let mut upsample = Vec::new();
        for (l, m) in config.multipliers.iter().enumerate().rev() {
            let mut level = Vec::new();
            for b in 0..=config.blocks {
                let skip = skip_channels
                    .pop()
                    .expect("one skip per down block plus the input");
                let name = format!("up{l}.{b}");
                level.push(ResBlock::new(c + skip, base * m, emb, GLOBAL, vb.pp(name))?);
                c = base * m;
            }
            up.push(level);
            if l > 0 {
                upsample.push(conv(c, c, 3, GLOBAL, vb.pp(format!("upsample{l}")))?);
            }
        }
        Ok(Unet {
            embedding: NoiseEmbedding::new(base, classes, vb.clone())?,
            input: conv(channels, base, 3, GLOBAL, vb.pp("input"))?,
            down,
            middle,
            up,
            upsample,
            out_norm: Norm::new(c, GLOBAL, vb.pp("out_norm"))?,
            output: zero_conv(c, channels, GLOBAL, vb.pp("output"))?,
        })
    }
}

impl Network for Unet {
    fn forward(&self, x: &Tensor, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let emb = self.embedding.forward(c_noise, labels)?;
        let mut h = self.input.forward(x)?;
        let mut skips = vec![h.clone()];
        let last = self.down.len() - 1;
        for (l, level) in self.down.iter().enumerate() {
            for block in level {
                h = block.forward(&h, &emb)?;
                skips.push(h.clone());
            }
            if l < last {
                h = avg_pool2x(&h)?;
                skips.push(h.clone());
            }
        }
        let (first, attention, second) = &self.middle;
        h = first.forward(&h, &emb)?;
        if let Some(attention) = attention {
            h = attention.forward(&h)?;
        }
        h = second.forward(&h, &emb)?;
        for (i, level) in self.up.iter().enumerate() {
            for block in level {
                let skip = skips.pop().expect("one skip per up block");
                h = block.forward(&Tensor::cat(&[&h, &skip], 1)?, &emb)?;
            }
            if let Some(conv) = self.upsample.get(i) {
                h = conv.forward(&upsample2x(&h)?)?;
            }
        }
        self.output.forward(&self.out_norm.forward_silu(&h)?)
    }
}

/// The channel count of images of `shape` [C, H, W], checked against `config`.
fn image_channels(shape: &[usize], config: &UnetConfig) -> Result<usize> {
    let &[channels, height, width] = shape else {
        return Err(Error::shape(
            "U-Net image shape",
            "[C, H, W]",
            format!("{shape:?}"),
        ));
    };
    let levels = config.multipliers.len();
    let factor = 1usize << levels.saturating_sub(1);
    if config.base == 0 || levels == 0 || config.blocks == 0 || config.multipliers.contains(&0) {
        return Err(Error::invalid(
            "U-Net config",
            format!("{config:?}"),
            "base, blocks and every multiplier must be at least 1, with at least one level",
        ));
    }
    if height % factor != 0 || width % factor != 0 {
        return Err(Error::invalid(
            "image size",
            format!("{height}x{width}"),
            format!("{levels} levels need sides divisible by {factor}"),
        ));
    }
    Ok(channels)
}
