//! EDM (THEORY §3; Karras et al. 2022): sigma log-normal, scalings that keep
//! the network's input and target at unit variance, Heun on the rho = 7 schedule.

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Parameterisation, Scalings};
use crate::sample::{Method, Plan, Schedule};
use crate::Result;

pub struct Edm {
    pub sigma_data: f64,
    pub p_mean: f64,
    pub p_std: f64,
}

impl Parameterisation for Edm {
    /// c_skip = sd^2/(sigma^2+sd^2), c_out = sigma sd/sqrt(sigma^2+sd^2),
    /// c_in = 1/sqrt(sigma^2+sd^2), c_noise = ln(sigma)/4 (THEORY §3).
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        let sd = self.sigma_data;
        let total = (sigma.sqr()? + sd * sd)?;
        Ok(Scalings {
            c_skip: (total.recip()? * (sd * sd))?,
            c_out: ((sigma * sd)? / total.sqrt()?)?,
            c_in: total.sqrt()?.recip()?,
            c_noise: (sigma.log()? / 4.0)?,
        })
    }

    /// lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 (THEORY §3).
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        let sd = self.sigma_data;
        Ok(((sigma.sqr()? + sd * sd)? / (sigma * sd)?.sqr()?)?)
    }

    /// ln sigma ~ N(P_mean, P_std^2), drawn in f32.
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        let normal: f32 = StandardNormal.sample(rng);
        (self.p_mean as f32 + self.p_std as f32 * normal).exp()
    }
}

impl Edm {
    /// Heun on EDM's schedule (sigma 80 .. 0.002, rho = 7) with `steps` levels.
    pub fn native(steps: usize) -> Result<Plan> {
        let schedule = Schedule {
            steps,
            ..Schedule::default()
        };
        Plan::new(&schedule, Method::Heun)
    }
}
