//! Euler on the probability-flow ODE (THEORY §2): first order, one
//! evaluation per step.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{step_by_step, Integrator, Observe};
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
        step_by_step(x, sigmas, |i, (s, s_next), x| {
            let denoised = denoiser.denoise(x, s)?;
            observe(i, s, x, &denoised)?;
            euler(x, &denoised, s, s_next)
        })
    }
}

/// d = (x - D) / s; x' = x + (s_next - s) d.
fn euler(x: &Tensor, denoised: &Tensor, s: f64, s_next: f64) -> Result<Tensor> {
    let d = ((x - denoised)? / s)?;
    Ok((x + (d * (s_next - s))?)?)
}
