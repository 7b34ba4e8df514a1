//! Neural denoisers (MLP, U-Net, DiT): candle networks wrapped by their
//! framework's preconditioning (EDM's by default) into a
//! [`Denoiser`](crate::denoise::Denoiser), trained with its loss.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use diffusion_regimes::denoise::Denoiser;
//! use diffusion_regimes::framework::Framework;
//! use diffusion_regimes::nn::{Arch, MlpConfig, Params, Precond};
//! let params = Params::new(0); // weights drawn from seed 0
//! let arch = Arch::Mlp(MlpConfig { width: 32, depth: 2 });
//! let net = arch.build(&[8], None, params.var_builder(DType::F32, &Device::Cpu)).unwrap();
//! let edm = Framework::EDM.parameterisation(0.5, -1.2, 1.2);
//! let d = Precond::new(net, edm, vec![8], &Device::Cpu);
//! let x = Tensor::ones((3, 8), DType::F32, &Device::Cpu).unwrap();
//! // The output layer starts at zero, so an untrained model denoises as c_skip x.
//! let y = d.denoise(&x, 1.0).unwrap();
//! let c_skip = 0.25 / (1.0 + 0.25);
//! assert!((y.to_vec2::<f32>().unwrap()[0][0] - c_skip as f32).abs() < 1e-6);
//! ```

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod blocks;
pub mod checkpoint;
mod cnn;
mod config;
mod dit;
mod embedding;
mod init;
mod mlp;
mod observer;
pub mod ops;
pub mod optim;
mod options;
mod params;
mod precond;
pub mod train;
mod unet;

pub use blocks::Padding;
pub use cnn::{Cnn, CnnConfig};
pub use dit::{Dit, DitConfig};
pub use init::{weights_hash, InitFrom};
pub use mlp::{Mlp, MlpConfig};
pub use options::{SigmaData, TrainOptions};
pub use params::Params;
pub use precond::{
    consistency_errors, denoising_loss, heun_step, weighted_errors, ClassModel, Precond,
};
pub use unet::{Unet, UnetConfig};

/// The raw network F(c_in x, c_noise) of EDM (THEORY §3).
pub trait Network: Send + Sync + std::any::Any {
    /// `x` is `[B, ...]` in the network's input shape; `c_noise` is `[B]`;
    /// `labels` `[B]` (u32, the class count meaning "no class") for a
    /// class-conditional network (THEORY §10), None for no class at all.
    fn forward(&self, x: &Tensor, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor>;
}

/// Which network, with its size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Arch {
    Mlp(MlpConfig),
    Unet(UnetConfig),
    Dit(DitConfig),
    Cnn(CnnConfig),
}

impl Arch {
    /// The kinds `of_kind` builds, as configs and `--arch` name them.
    pub const KINDS: &'static [&'static str] = &["mlp", "unet", "dit", "cnn"];

    /// The network of kind `mlp`, `unet`, `dit` or `cnn` (the names configs
    /// use): hidden width, base channels, token width or channels `width`,
    /// `depth` blocks (per resolution, for the U-Net; default 4 for the MLP,
    /// the DiT and the CNN, 1 for the U-Net), for the U-Net its channel
    /// multipliers and self-attention, for the CNN its padding. The DiT gets
    /// 4 heads and patches of 2 (see [`DitConfig`]).
    pub fn of_kind(
        kind: &str,
        width: usize,
        depth: Option<usize>,
        multipliers: Vec<usize>,
        attention: bool,
        padding: Padding,
    ) -> Result<Arch> {
        match kind {
            "mlp" => Ok(Arch::Mlp(MlpConfig {
                width,
                depth: depth.unwrap_or(4),
            })),
            "unet" => Ok(Arch::Unet(UnetConfig {
                base: width,
                multipliers,
                blocks: depth.unwrap_or(1),
                attention,
            })),
            "dit" => Ok(Arch::Dit(DitConfig {
                width,
                depth: depth.unwrap_or(4),
                heads: 4,
                patch: 2,
            })),
            "cnn" => Ok(Arch::Cnn(CnnConfig {
                width,
                depth: depth.unwrap_or(4),
                padding,
            })),
            _ => Err(Error::invalid(
                "architecture",
                kind,
                format!("use {}", Arch::KINDS.join(", ")),
            )),
        }
    }

    /// The shape one example has inside the network: the MLP sees flat
    /// vectors (images are flattened), the U-Net and the CNN see
    /// `[C, H, W]`, the DiT either.
    pub fn input_shape(&self, sample_shape: &[usize]) -> Result<Vec<usize>> {
        match self {
            Arch::Mlp(_) => Ok(vec![sample_shape.iter().product()]),
            Arch::Dit(_) => Ok(sample_shape.to_vec()),
            Arch::Unet(_) | Arch::Cnn(_) if sample_shape.len() == 3 => Ok(sample_shape.to_vec()),
            Arch::Unet(_) | Arch::Cnn(_) => Err(Error::shape(
                match self {
                    Arch::Cnn(_) => "CNN training data",
                    _ => "U-Net training data",
                },
                "images [N, C, H, W]",
                format!("examples of shape {sample_shape:?}"),
            )),
        }
    }

    /// A short name for folders and legends: `mlp-w64-d4`,
    /// `unet-b32-m1x2x2-r1-attn`, `cnn-w64-d4-circular`.
    pub fn label(&self) -> String {
        match self {
            Arch::Mlp(c) => format!("mlp-w{}-d{}", c.width, c.depth),
            Arch::Unet(c) => {
                let m: Vec<String> = c.multipliers.iter().map(|m| m.to_string()).collect();
                let attention = if c.attention { "-attn" } else { "" };
                format!("unet-b{}-m{}-r{}{attention}", c.base, m.join("x"), c.blocks)
            }
            Arch::Dit(c) => format!("dit-w{}-d{}-h{}-p{}", c.width, c.depth, c.heads, c.patch),
            Arch::Cnn(c) => format!("cnn-w{}-d{}-{}", c.width, c.depth, c.padding.name()),
        }
    }

    /// The side of the square of input pixels one output pixel depends on;
    /// None where it is the whole example (a norm or a layer mixes all).
    pub fn receptive_field(&self) -> Option<usize> {
        match self {
            Arch::Cnn(c) => Some(c.receptive_field()),
            Arch::Mlp(_) | Arch::Unet(_) | Arch::Dit(_) => None,
        }
    }

    /// Builds the network for examples of `sample_shape`, creating its
    /// parameters in `vb`; with `classes`, a class embedding too (THEORY §10).
    pub fn build(
        &self,
        sample_shape: &[usize],
        classes: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Box<dyn Network>> {
        let shape = self.input_shape(sample_shape)?;
        Ok(match self {
            Arch::Mlp(config) => Box::new(Mlp::new(shape[0], config, classes, vb)?),
            Arch::Unet(config) => Box::new(Unet::new(&shape, config, classes, vb)?),
            Arch::Dit(config) => Box::new(Dit::new(&shape, config, classes, vb)?),
            Arch::Cnn(config) => Box::new(Cnn::new(&shape, config, classes, vb)?),
        })
    }
}
