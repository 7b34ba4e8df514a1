//! Heun (EDM Algorithm 2 with S_churn = 0, THEORY §2): second order, 2S - 1
//! evaluations.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{step_by_step, Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

pub struct Heun;

impl Integrator for Heun {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        _: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        step_by_step(x, sigmas, |i, levels, x| {
            heun(denoiser, x, levels, i, observe)
        })
    }
}

/// One step from s to s_next: Euler predictor, then the trapezoidal
/// corrector when s_next > 0; the step to sigma = 0 stays plain Euler.
pub(super) fn heun(
    denoiser: &dyn Denoiser,
    x: &Tensor,
    (s, s_next): (f64, f64),
    index: usize,
    observe: Observe<'_>,
) -> Result<Tensor> {
    let denoised = denoiser.denoise(x, s)?;
    observe(index, s, x, &denoised)?;
    let d = ((x - &denoised)? / s)?;
    let x_next = (x + (&d * (s_next - s))?)?;
    if s_next == 0.0 {
        return Ok(x_next);
    }
    let d_next = ((&x_next - denoiser.denoise(&x_next, s_next)?)? / s_next)?;
    Ok((x + ((d + d_next)? * (0.5 * (s_next - s)))?)?)
}
