//! Score-SDE VE (THEORY §9; EDM's VEPrecond / VELoss): D = x + sigma F(x,
//! ln(sigma / 2)), sigma log-uniform in [0.02, 100], weight 1 / sigma^2;
//! sampled by Euler in sigma on a geometric grid.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::{check_steps, inverse_square, linspace, Parameterisation, Scalings};
use crate::sample::{Euler, Plan};
use crate::Result;

pub struct Ve {
    pub sigma_min: f64,
    pub sigma_max: f64,
}

impl Default for Ve {
    fn default() -> Self {
        Ve {
            sigma_min: 0.02,
            sigma_max: 100.0,
        }
    }
}

impl Parameterisation for Ve {
    /// c_skip = 1, c_out = sigma, c_in = 1, c_noise = ln(sigma / 2).
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        Ok(Scalings {
            c_skip: sigma.ones_like()?,
            c_out: sigma.clone(),
            c_in: sigma.ones_like()?,
            c_noise: (sigma / 2.0)?.log()?,
        })
    }

    /// 1 / sigma^2: the loss is ||F + z||^2, F's target is -z.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        inverse_square(sigma)
    }

    /// ln sigma uniform in [ln sigma_min, ln sigma_max].
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        let (lo, hi) = (self.sigma_min.ln(), self.sigma_max.ln());
        (lo + (hi - lo) * rng.gen::<f64>()).exp() as f32
    }
}

impl Ve {
    /// Euler in sigma on `steps` geometric levels sigma_max .. sigma_min, then 0.
    pub fn native(&self, steps: usize) -> Result<Plan> {
        check_steps(steps)?;
        let mut sigmas: Vec<f64> = linspace(self.sigma_max.ln(), self.sigma_min.ln(), steps)
            .into_iter()
            .map(f64::exp)
            .collect();
        sigmas.push(0.0);
        Ok(Plan {
            sigmas,
            integrator: Box::new(Euler),
        })
    }
}
