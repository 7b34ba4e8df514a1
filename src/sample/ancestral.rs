//! The reverse SDE's ancestral step (THEORY §2): a fresh draw of the noise
//! at every level, as the clone test needs.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{row_noise, step_by_step, Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

pub struct Ancestral;

impl Integrator for Ancestral {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        streams: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        step_by_step(x, sigmas, |i, (s, s_next), x| {
            let denoised = denoiser.denoise(x, s)?;
            observe(i, s, x, &denoised)?;
            let z = row_noise(streams, x)?;
            ancestral(x, &denoised, s, s_next, &z)
        })
    }
}

/// The Gaussian posterior of x(s_next) given x(s) when the clean point is
/// D(x; s) (DDPM's posterior in VE form), x' = x + a (D - x) + sqrt(a) s_next z
/// with a = 1 - s_next^2 / s^2; at s_next = 0 it returns D.
fn ancestral(x: &Tensor, denoised: &Tensor, s: f64, s_next: f64, z: &Tensor) -> Result<Tensor> {
    let a = 1.0 - (s_next * s_next) / (s * s);
    Ok(((x + ((denoised - x)? * a)?)? + (z * (a.sqrt() * s_next))?)?)
}
