//! The `Denoiser` trait, the centre of the crate, and the analytic denoisers.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser};
//! let train = Tensor::new(&[[1.0f64, 0.0], [-1.0, 0.0]], &Device::Cpu).unwrap();
//! let d = EmpiricalDenoiser::new(&train).unwrap();
//! let x = Tensor::new(&[[0.9f64, 0.1]], &Device::Cpu).unwrap();
//! // At a tiny noise level the memorizing denoiser returns the nearest training point.
//! let y = d.denoise(&x, 1e-3).unwrap().to_vec2::<f64>().unwrap();
//! assert!((y[0][0] - 1.0).abs() < 1e-12);
//! ```

use candle_core::{Tensor, D};

use crate::error::check_sigma;
use crate::{Error, Result};

pub mod conditional;
mod distinct;
mod empirical;
mod gaussian;
pub mod jacobian;
mod kde;
mod mixture;
mod patch_denoiser;
mod patch_size;
pub mod patches;
mod softmax_cpu;
mod softmax_mean;
mod sparse_weights;

pub use empirical::EmpiricalDenoiser;
pub use gaussian::GaussianDenoiser;
pub use kde::KdeDenoiser;
pub use mixture::{Component, Mixture};
pub use patch_denoiser::PatchDenoiser;
pub use patch_size::PatchSize;
pub use patches::{ImageShape, PatchKind};

/// An x0-estimate D(x; sigma) = E[y | x] in the variance-exploding convention
/// (THEORY §1). `x` is a batch of rows `[B, n]`; the result has the dtype and
/// device of `x`.
pub trait Denoiser: Send + Sync {
    /// D(x; sigma) for every row of `x`.
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor>;

    /// The data dimension n.
    fn dim(&self) -> usize;

    /// Tweedie's score grad_x log p_sigma(x) = (D(x; sigma) - x) / sigma^2 (THEORY §1).
    fn score(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        Ok(((self.denoise(x, sigma)? - x)? / (sigma * sigma))?)
    }

    /// Probability-flow ODE derivative dx/dsigma = (x - D(x; sigma)) / sigma (THEORY §1).
    fn ode_derivative(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        Ok(((x - self.denoise(x, sigma)?)? / sigma)?)
    }

    /// The Jacobian dD/dx at each row of `x`: [B, n, n], entry (b, i, j) =
    /// dD_i/dx_j. By default central finite differences in f64 with step
    /// 1e-4 sigma (the scale on which D varies); denoisers with a closed form
    /// or autodiff override it.
    fn jacobian(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let x64 = x.to_dtype(candle_core::DType::F64)?;
        let j = jacobian::jacobian_finite_difference(self, &x64, sigma, 1e-4 * sigma)?;
        Ok(j.to_dtype(x.dtype())?)
    }

    /// The vector-Jacobian product (dD/dx)^T v for each row of `x` and of
    /// `v` ([B, n]), as DPS needs it (THEORY §11). By default reverse-mode
    /// autodiff through `denoise`, which every denoiser of this crate builds
    /// from differentiable tensor ops (tests compare each with finite differences).
    fn vjp(&self, x: &Tensor, sigma: f64, v: &Tensor) -> Result<Tensor> {
        jacobian::vjp_autodiff(self, x, sigma, v)
    }

    /// How [`Denoiser::jacobian`] is computed, for the record.
    fn jacobian_method(&self) -> &'static str {
        "central finite differences"
    }
}

/// Checks that `x` is a batch `[B, n]` of rows of dimension `n` and that sigma is valid.
pub(crate) fn check_input(x: &Tensor, n: usize, sigma: f64) -> Result<()> {
    check_sigma(sigma)?;
    match x.dims() {
        [_, m] if *m == n => Ok(()),
        dims => Err(Error::shape(
            "denoiser input",
            format!("[B, {n}]"),
            format!("{dims:?}"),
        )),
    }
}

/// Row-wise softmax, with each row's maximum subtracted before exponentiating.
pub(crate) fn softmax_rows(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?;
    let p = logits.broadcast_sub(&max)?.exp()?;
    Ok(p.broadcast_div(&p.sum_keepdim(D::Minus1)?)?)
}
