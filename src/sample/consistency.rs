//! Multistep consistency sampling (THEORY §16; Song et al. 2023, Algorithm
//! 1): the model is a consistency function f(x, sigma), the ODE's endpoint
//! from x. At each level x_0 = f(x, sigma); then fresh noise takes x_0 to the
//! next level, x = x_0 + sqrt(sigma_next^2 - sigma_min^2) z. On [sigma_max,
//! 0] it is the one-step sampler x = f(sigma_max z, sigma_max).

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::sampler::{row_noise, step_by_step, Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

/// The consistency model's boundary level: noise is added up to
/// sqrt(sigma^2 - sigma_min^2), as f treats sigma_min as clean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsistencySteps {
    pub sigma_min: f64,
}

impl Default for ConsistencySteps {
    /// Song et al.'s sigma_min = 0.002, EDM's lowest level.
    fn default() -> Self {
        Self { sigma_min: 0.002 }
    }
}

impl Integrator for ConsistencySteps {
    fn integrate(
        &self,
        model: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        streams: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        step_by_step(x, sigmas, |i, (s, s_next), x| {
            let endpoint = model.denoise(x, s)?;
            observe(i, s, x, &endpoint)?;
            if s_next == 0.0 {
                return Ok(endpoint);
            }
            let z = row_noise(streams, x)?;
            let spread = (s_next * s_next - self.sigma_min * self.sigma_min).max(0.0);
            Ok((endpoint + (z * spread.sqrt())?)?)
        })
    }
}
