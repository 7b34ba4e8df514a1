//! DDPM's epsilon-prediction (THEORY §9; Ho et al. 2020): linear betas
//! 1e-4..0.02 over T = 1000 steps, alpha_bar_t = prod_{i <= t} (1 - beta_i),
//! sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t); t uniform on 1..T, D =
//! x_VE - sigma eps(x_VP, t), weight 1 / sigma^2 (the simple loss); sampled
//! by DDIM (eta = 0) on the model's own timesteps.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::{check_steps, epsilon_scalings, inverse_square, per_row, Parameterisation, Scalings};
use crate::sample::{Ddim, Plan};
use crate::Result;

pub struct VpEps {
    /// ln alpha_bar_t for t = 0..=T (ln alpha_bar_0 = 0).
    log_alpha_bar: Vec<f64>,
}

impl VpEps {
    /// DDPM's schedule: betas linear from 1e-4 to 0.02, T = 1000.
    pub fn ddpm() -> Self {
        Self::linear(1e-4, 0.02, 1000)
    }

    pub fn linear(beta_1: f64, beta_t: f64, steps: usize) -> Self {
        let mut log_alpha_bar = vec![0.0];
        for i in 0..steps {
            let beta = beta_1 + (beta_t - beta_1) * i as f64 / (steps - 1) as f64;
            log_alpha_bar.push(log_alpha_bar[i] + (-beta).ln_1p());
        }
        VpEps { log_alpha_bar }
    }

    /// T, the number of diffusion steps.
    pub fn steps(&self) -> usize {
        self.log_alpha_bar.len() - 1
    }

    /// sigma_t of integer timestep t.
    pub fn sigma(&self, t: usize) -> f64 {
        (-self.log_alpha_bar[t]).exp_m1().sqrt()
    }

    /// The continuous timestep of noise level sigma: ln alpha_bar
    /// interpolated linearly between integer t (extrapolated past T), so
    /// that time(sigma_t) = t.
    pub fn time(&self, sigma: f64) -> f64 {
        let target = -sigma.mul_add(sigma, 1.0).ln();
        let table = &self.log_alpha_bar;
        // First t whose ln alpha_bar is at or below the target (it decreases in t).
        let after = table
            .partition_point(|&l| l > target)
            .clamp(1, self.steps());
        let (above, below) = (table[after - 1], table[after]);
        (after - 1) as f64 + (above - target) / (above - below)
    }

    /// DDIM on `steps` timesteps T = t_0 > ... > t_(S-1) = 1 evenly spaced
    /// (rounded to integers), then sigma = 0.
    pub fn native(&self, steps: usize) -> Result<Plan> {
        check_steps(steps)?;
        let last = self.steps() as f64;
        let mut timesteps: Vec<usize> = (0..steps)
            .map(|k| (last - (last - 1.0) * k as f64 / (steps - 1) as f64).round() as usize)
            .collect();
        timesteps.dedup();
        let mut sigmas: Vec<f64> = timesteps.into_iter().map(|t| self.sigma(t)).collect();
        sigmas.push(0.0);
        Ok(Plan {
            sigmas,
            integrator: Box::new(Ddim),
        })
    }
}

impl Parameterisation for VpEps {
    /// c_skip = 1, c_out = -sigma, c_in = 1/sqrt(1 + sigma^2), c_noise = t / T.
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        let steps = self.steps() as f64;
        epsilon_scalings(sigma, per_row(sigma, |s| self.time(s) / steps)?)
    }

    /// 1 / sigma^2: DDPM's simple loss ||eps_theta - z||^2.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        inverse_square(sigma)
    }

    /// t uniform on 1..=T.
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        self.sigma(rng.gen_range(1..=self.steps())) as f32
    }
}
