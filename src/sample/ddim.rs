//! DDIM with eta = 0, integrated in VP variables (THEORY §1-2); it equals
//! Euler in VE variables.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

pub struct Ddim;

impl Integrator for Ddim {
    /// alpha_bar = 1 / (1 + sigma^2), x_VP = x_VE / sqrt(1 + sigma^2):
    /// x_VP' = sqrt(alpha_bar') x0 + sqrt(1 - alpha_bar') eps, with eps = (x_VE - D) / sigma.
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        _: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        let scale = |s: f64| (1.0 + s * s).sqrt();
        let mut x_vp = (x / scale(sigmas[0]))?;
        for (i, pair) in sigmas.windows(2).enumerate() {
            let (s, s_next) = (pair[0], pair[1]);
            let x_ve = (&x_vp * scale(s))?;
            let x0 = denoiser.denoise(&x_ve, s)?;
            observe(i, s, &x_ve, &x0)?;
            let eps = ((&x_ve - &x0)? / s)?;
            let alpha_bar_next = 1.0 / (1.0 + s_next * s_next);
            x_vp = ((x0 * alpha_bar_next.sqrt())? + (eps * (1.0 - alpha_bar_next).sqrt())?)?;
        }
        Ok((x_vp * scale(*sigmas.last().expect("checked non-empty")))?)
    }
}
