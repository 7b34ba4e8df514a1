//! The noise-level embedding shared by the MLP and the U-Net, and the class
//! embedding a conditional network adds to it.

use candle_core::{Tensor, D};
use candle_nn::{Init, Linear, VarBuilder};

use crate::{Error, Result};

/// Highest frequency of the embedding; c_noise = ln(sigma)/4 spans about
/// [-1.6, 1.1] over EDM's sigma range, so frequencies 1..32 resolve it from
/// coarse to fine (EDM's Fourier embedding draws them from N(0, 16^2)).
const MAX_FREQUENCY: f64 = 32.0;

/// Fourier features [cos(2 pi f_k c), sin(2 pi f_k c)] of c_noise `[B]` (or
/// `[K, B]` for models stacked), with `dim / 2` geometric frequencies f_k
/// from 1 to 32, on a new last axis: deterministic, so nothing to store or
/// seed.
pub fn fourier_embedding(c_noise: &Tensor, dim: usize) -> Result<Tensor> {
    let half = (dim / 2).max(1);
    let freqs: Vec<f32> = (0..half)
        .map(|k| {
            let t = if half == 1 {
                0.0
            } else {
                k as f64 / (half - 1) as f64
            };
            (2.0 * std::f64::consts::PI * MAX_FREQUENCY.powf(t)) as f32
        })
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), c_noise.device())?.to_dtype(c_noise.dtype())?;
    let angles = c_noise.unsqueeze(c_noise.rank())?.broadcast_mul(&freqs)?;
    Ok(Tensor::cat(&[angles.cos()?, angles.sin()?], D::Minus1)?)
}

/// A linear layer whose weights and bias start at zero: output layers start
/// silent, so an untrained network's denoiser is c_skip x (THEORY §3).
pub fn zero_linear(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get_with_hints((outputs, inputs), "weight", Init::Const(0.0))?;
    let bias = vb.get_with_hints(outputs, "bias", Init::Const(0.0))?;
    Ok(Linear::new(weight, Some(bias)))
}

/// A learned vector per class added to the noise features (THEORY §10). The
/// label `classes` means "no class" and adds nothing: such rows compute
/// exactly what the unconditional network computes.
pub struct ClassEmbedding {
    table: Tensor,
    classes: usize,
}

impl ClassEmbedding {
    pub fn new(classes: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        let init = Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let table = vb.get_with_hints((classes, dim), "class_embedding", init)?;
        Ok(Self { table, classes })
    }

    /// `features` [B, dim] plus each row's class vector; `labels` [B] (u32).
    pub fn add(&self, features: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let labels = labels.to_vec1::<u32>()?;
        if let Some(&bad) = labels.iter().find(|&&l| l as usize > self.classes) {
            return Err(Error::invalid(
                "class",
                bad,
                format!("the network knows classes 0..{}", self.classes),
            ));
        }
        let mut onehot = vec![0f32; labels.len() * self.classes];
        for (row, &label) in labels.iter().enumerate() {
            if (label as usize) < self.classes {
                onehot[row * self.classes + label as usize] = 1.0;
            }
        }
        let onehot = Tensor::from_vec(onehot, (labels.len(), self.classes), features.device())?
            .to_dtype(features.dtype())?;
        Ok((features + onehot.matmul(&self.table)?)?)
    }
}

/// The noise features, plus the class vectors when the network has them and
/// `labels` are given; a network without classes refuses labels.
pub fn with_classes(
    features: Tensor,
    embedding: Option<&ClassEmbedding>,
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    match (embedding, labels) {
        (Some(e), Some(l)) => e.add(&features, l),
        (None, Some(_)) => Err(Error::invalid(
            "class",
            "given",
            "this network was trained without labels",
        )),
        (_, None) => Ok(features),
    }
}
