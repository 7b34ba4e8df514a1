//! The continuous VP schedule (THEORY §9; EDM's VPPrecond / VPLoss):
//! sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1), x_VP = x_VE /
//! sqrt(1 + sigma^2), an epsilon-predictor D = x - sigma eps(x_VP, t); t
//! uniform in [1e-5, 1], weight 1 / sigma^2; sampled by Euler in (x_VP, t)
//! from t = 1 to 1e-3 (EDM Table 1).

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::{check_steps, epsilon_scalings, inverse_square, linspace, Parameterisation, Scalings};
use crate::sample::{Plan, TimeEuler, TimeMap};
use crate::Result;

#[derive(Clone, Copy)]
pub struct Vp {
    pub beta_d: f64,
    pub beta_min: f64,
    /// Smallest training time.
    pub epsilon_t: f64,
    /// Where the sampler's time grid ends (then one step to sigma = 0).
    pub epsilon_s: f64,
}

impl Default for Vp {
    fn default() -> Self {
        Vp {
            beta_d: 19.9,
            beta_min: 0.1,
            epsilon_t: 1e-5,
            epsilon_s: 1e-3,
        }
    }
}

impl Vp {
    /// beta_d t^2 / 2 + beta_min t = ln(1 + sigma^2).
    fn exponent(&self, t: f64) -> f64 {
        0.5 * self.beta_d * t * t + self.beta_min * t
    }
}

impl TimeMap for Vp {
    /// t(sigma) = (sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d.
    fn time(&self, sigma: f64) -> f64 {
        let (b, m) = (self.beta_d, self.beta_min);
        ((m * m + 2.0 * b * sigma.mul_add(sigma, 1.0).ln()).sqrt() - m) / b
    }

    fn sigma(&self, t: f64) -> f64 {
        self.exponent(t).exp_m1().sqrt()
    }

    fn sigma_dot(&self, t: f64) -> f64 {
        0.5 * (self.beta_d * t + self.beta_min) * self.exponent(t).exp() / self.sigma(t)
    }

    /// s = 1 / sqrt(1 + sigma^2) = exp(-exponent / 2).
    fn scale(&self, t: f64) -> f64 {
        (-0.5 * self.exponent(t)).exp()
    }

    fn scale_dot(&self, t: f64) -> f64 {
        -0.5 * (self.beta_d * t + self.beta_min) * self.scale(t)
    }
}

impl Parameterisation for Vp {
    /// c_skip = 1, c_out = -sigma, c_in = 1/sqrt(1 + sigma^2), c_noise = t(sigma).
    /// EDM feeds 999 t to DDPM's positional embedding; this crate's Fourier
    /// embedding resolves c_noise of order one, so t goes in unscaled.
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        let (b, m) = (self.beta_d, self.beta_min);
        let log_total = (sigma.sqr()? + 1.0)?.log()?;
        let t = ((((log_total * (2.0 * b))? + m * m)?.sqrt()? - m)? / b)?;
        epsilon_scalings(sigma, t)
    }

    /// 1 / sigma^2: the epsilon-prediction loss ||eps_theta - z||^2.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        inverse_square(sigma)
    }

    /// t uniform in [epsilon_t, 1].
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        let t = self.epsilon_t + (1.0 - self.epsilon_t) * rng.gen::<f64>();
        self.sigma(t) as f32
    }
}

impl Vp {
    /// Euler in (x_VP, t) on `steps` times from 1 to epsilon_s, then sigma = 0.
    pub fn native(&self, steps: usize) -> Result<Plan> {
        check_steps(steps)?;
        let mut sigmas: Vec<f64> = linspace(1.0, self.epsilon_s, steps)
            .into_iter()
            .map(|t| self.sigma(t))
            .collect();
        sigmas.push(0.0);
        Ok(Plan {
            sigmas,
            integrator: Box::new(TimeEuler(Box::new(*self))),
        })
    }
}
