//! Euler on the probability-flow ODE (THEORY §2): first order, one
//! evaluation per step.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

pub struct Euler;

impl Integrator for Euler {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        _: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, pair) in sigmas.windows(2).enumerate() {
            let (s, s_next) = (pair[0], pair[1]);
            let denoised = denoiser.denoise(&x, s)?;
            observe(i, s, &x, &denoised);
            x = euler(&x, &denoised, s, s_next)?;
        }
        Ok(x)
    }
}

/// d = (x - D) / s; x' = x + (s_next - s) d.
fn euler(x: &Tensor, denoised: &Tensor, s: f64, s_next: f64) -> Result<Tensor> {
    let d = ((x - denoised)? / s)?;
    Ok((x + (d * (s_next - s))?)?)
}
