//! EDM's stochastic sampler (THEORY §2): Langevin-like churn, then a Heun step.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::heun::heun;
use super::sampler::{row_noise, step_by_step, Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

/// Parameters of the stochastic EDM sampler (THEORY §2).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    pub s_churn: f64,
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
}

impl Default for Churn {
    /// The EDM paper's values for CIFAR-10 (VP): S_churn = 30, S_tmin = 0.01, S_tmax = 1, S_noise = 1.007.
    fn default() -> Self {
        Self {
            s_churn: 30.0,
            s_tmin: 0.01,
            s_tmax: 1.0,
            s_noise: 1.007,
        }
    }
}

impl Integrator for Churn {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        streams: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        let steps = sigmas.len() - 1;
        step_by_step(x, sigmas, |i, (s, s_next), x| {
            let (x_hat, s_hat) = self.add_churn(x, s, steps, streams)?;
            heun(denoiser, &x_hat, (s_hat, s_next), i, observe)
        })
    }
}

impl Churn {
    /// gamma = min(S_churn / S, sqrt(2) - 1) inside [S_tmin, S_tmax],
    /// s_hat = s (1 + gamma), x_hat = x + sqrt(s_hat^2 - s^2) S_noise z.
    fn add_churn(
        &self,
        x: &Tensor,
        s: f64,
        steps: usize,
        streams: &mut [ChaCha20Rng],
    ) -> Result<(Tensor, f64)> {
        let gamma = if (self.s_tmin..=self.s_tmax).contains(&s) {
            (self.s_churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        };
        if gamma == 0.0 {
            return Ok((x.clone(), s));
        }
        let s_hat = s * (1.0 + gamma);
        let z = row_noise(streams, x)?;
        let x_hat = (x + (z * ((s_hat * s_hat - s * s).sqrt() * self.s_noise))?)?;
        Ok((x_hat, s_hat))
    }
}
