//! The convolutional pieces the U-Net and the local CNN share: 3x3
//! convolutions, normalisation fused with SiLU, residual blocks fed the
//! noise embedding, and the embedding itself.
//!
//! The two networks differ in where a value may come from. The U-Net's
//! group norm takes its statistics over all pixels and pads with zeros; the
//! local CNN ([`Locality::Local`]) normalises each pixel over its own
//! channels, so an output pixel depends only on the inputs its convolutions
//! reach (THEORY §12: the receptive field the patch closed forms assume),
//! and may pad circularly, so it commutes with circular shifts.

use candle_core::Tensor;
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::embedding::{fourier_embedding, with_classes, ClassEmbedding};
use super::ops::{conv2d_same, linear_forward, silu, GroupNorm};
use crate::Result;

/// DDPM++ scales residual sums by sqrt(1/2) to keep activations' variance.
pub(super) const SKIP_SCALE: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// How a convolution fills the pixels outside the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    #[default]
    Zero,
    /// The image wraps around, as circular ELS assumes (THEORY §12).
    Circular,
}

impl Padding {
    /// Its name in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Zero => "zero",
            Padding::Circular => "circular",
        }
    }
}

impl std::str::FromStr for Padding {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self> {
        [Padding::Zero, Padding::Circular]
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| crate::Error::invalid("padding", text, "use zero or circular"))
    }
}

/// Whether values travel across the image beyond the convolutions' reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Locality {
    /// Group norm over all pixels, zero padding (the U-Net).
    Global,
    /// Per-pixel norm over channels, padding as given (the local CNN).
    Local(Padding),
}

/// The largest group count <= 32 that divides `channels` with at least 4 channels a group.
fn groups(channels: usize) -> usize {
    (1..=(channels / 4).clamp(1, 32))
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1)
}

/// A stride-1 convolution of odd kernel that keeps the image size, run by
/// [`conv2d_same`] (candle's layer holds and initialises the weights).
pub(super) struct Conv {
    conv: Conv2d,
    circular: bool,
}

impl Conv {
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (weight, bias) = (self.conv.weight(), self.conv.bias());
        let reach = weight.dim(3)? / 2;
        if !self.circular || reach == 0 {
            return conv2d_same(x, weight, bias);
        }
        // Wrap `reach` pixels around each side; the same-padded convolution
        // of the wrapped image, cropped, is the circular one.
        let (_, _, height, width) = x.dims4()?;
        let wrapped = wrap(&wrap(x, 2, reach)?, 3, reach)?;
        let y = conv2d_same(&wrapped, weight, bias)?;
        Ok(y.narrow(2, reach, height)?.narrow(3, reach, width)?)
    }
}

/// `x` with its last `reach` rows (or columns, along `dim`) copied before
/// its first and its first after its last.
fn wrap(x: &Tensor, dim: usize, reach: usize) -> Result<Tensor> {
    let size = x.dim(dim)?;
    let (before, after) = (
        x.narrow(dim, size - reach, reach)?,
        x.narrow(dim, 0, reach)?,
    );
    Ok(Tensor::cat(&[&before, x, &after], dim)?)
}

pub(super) fn conv(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    locality: Locality,
    vb: VarBuilder,
) -> Result<Conv> {
    let cfg = Conv2dConfig {
        padding: kernel / 2,
        ..Default::default()
    };
    Ok(Conv {
        conv: conv2d(inputs, outputs, kernel, cfg, vb)?,
        circular: locality == Locality::Local(Padding::Circular),
    })
}

/// A 3x3 convolution whose weights and bias start at zero (the output layer:
/// the network starts as D = c_skip x).
pub(super) fn zero_conv(
    inputs: usize,
    outputs: usize,
    locality: Locality,
    vb: VarBuilder,
) -> Result<Conv> {
    let weight = vb.get_with_hints(
        (outputs, inputs, 3, 3),
        "weight",
        candle_nn::Init::Const(0.0),
    )?;
    let bias = vb.get_with_hints(outputs, "bias", candle_nn::Init::Const(0.0))?;
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    Ok(Conv {
        conv: Conv2d::new(weight, Some(bias), cfg),
        circular: locality == Locality::Local(Padding::Circular),
    })
}

/// Normalisation with learnt per-channel scale and shift, over a group of
/// channels and all pixels, or over each pixel's channels.
pub(super) struct Norm {
    norm: GroupNorm,
    per_pixel: bool,
}

impl Norm {
    pub(super) fn new(channels: usize, locality: Locality, vb: VarBuilder) -> Result<Self> {
        let (groups, per_pixel) = match locality {
            Locality::Global => (groups(channels), false),
            Locality::Local(_) => (1, true),
        };
        Ok(Norm {
            norm: GroupNorm::new(groups, channels, 1e-6, vb)?,
            per_pixel,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, false)
    }

    /// silu(norm(x)), fused.
    pub(super) fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, true)
    }

    fn apply(&self, x: &Tensor, then_silu: bool) -> Result<Tensor> {
        let run = |x: &Tensor| match then_silu {
            true => self.norm.forward_silu(x),
            false => self.norm.forward(x),
        };
        if !self.per_pixel {
            return run(x);
        }
        // Each pixel becomes an example of C channels and one position.
        let (b, c, h, w) = x.dims4()?;
        let pixels = x.permute((0, 2, 3, 1))?.reshape((b * h * w, c, 1))?;
        let y = run(&pixels)?.reshape((b, h, w, c))?;
        Ok(y.permute((0, 3, 1, 2))?.contiguous()?)
    }
}

/// A residual block: norm, SiLU, 3x3 convolution, plus the block's share of
/// the noise embedding, norm, SiLU, 3x3 convolution, added to the input (a
/// 1x1 convolution of it when the channel count changes).
pub(super) struct ResBlock {
    norm1: Norm,
    conv1: Conv,
    embed: Linear,
    norm2: Norm,
    conv2: Conv,
    skip: Option<Conv>,
}

impl ResBlock {
    pub(super) fn new(
        inputs: usize,
        outputs: usize,
        emb: usize,
        locality: Locality,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(ResBlock {
            norm1: Norm::new(inputs, locality, vb.pp("norm1"))?,
            conv1: conv(inputs, outputs, 3, locality, vb.pp("conv1"))?,
            embed: linear(emb, outputs, vb.pp("embed"))?,
            norm2: Norm::new(outputs, locality, vb.pp("norm2"))?,
            conv2: conv(outputs, outputs, 3, locality, vb.pp("conv2"))?,
            skip: match inputs == outputs {
                true => None,
                false => Some(conv(inputs, outputs, 1, locality, vb.pp("skip"))?),
            },
        })
    }

    pub(super) fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let e = linear_forward(&self.embed, emb)?
            .unsqueeze(2)?
            .unsqueeze(3)?;
        let h = h.broadcast_add(&e)?;
        let h = self.conv2.forward(&self.norm2.forward_silu(&h)?)?;
        let skip = match &self.skip {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        Ok(((h + skip)? * SKIP_SCALE)?)
    }
}

/// The noise level's Fourier features of `base` frequencies through two
/// SiLU layers to `4 base` features, plus the class vector of a
/// class-conditional network (THEORY §10).
pub(super) struct NoiseEmbedding {
    embed1: Linear,
    embed2: Linear,
    classes: Option<ClassEmbedding>,
    base: usize,
}

impl NoiseEmbedding {
    pub(super) fn new(base: usize, classes: Option<usize>, vb: VarBuilder) -> Result<Self> {
        Ok(NoiseEmbedding {
            embed1: linear(base, 4 * base, vb.pp("embed1"))?,
            embed2: linear(4 * base, 4 * base, vb.pp("embed2"))?,
            classes: classes
                .map(|k| ClassEmbedding::new(k, base, vb.clone()))
                .transpose()?,
            base,
        })
    }

    /// `[B, 4 base]` for c_noise `[B]` and, if conditional, labels `[B]`.
    pub(super) fn forward(&self, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let emb = fourier_embedding(c_noise, self.base)?;
        let emb = with_classes(emb, self.classes.as_ref(), labels)?;
        let emb = silu(&linear_forward(&self.embed1, &emb)?)?;
        silu(&linear_forward(&self.embed2, &emb)?)
    }
}
