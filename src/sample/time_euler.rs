//! Euler in a framework's own variables (THEORY §9; EDM Algorithm 1 with
//! first-order steps): the state x = s(t) x_VE moves in t along
//! dx/dt = (sigma'/sigma + s'/s) x - (sigma' s / sigma) D(x / s; sigma).
//! With s = 1 and sigma = t it is Euler in sigma; the VP and flow samplers
//! are it with their own s(t), sigma(t).

use candle_core::Tensor;
use rand_chacha::ChaCha20Rng;

use super::sampler::{Integrator, Observe};
use crate::denoise::Denoiser;
use crate::Result;

/// A framework's time variable t: its noise level sigma(t), its scale s(t)
/// (x = s x_VE), their derivatives, and t(sigma).
pub trait TimeMap: Send + Sync {
    fn time(&self, sigma: f64) -> f64;
    fn sigma(&self, t: f64) -> f64;
    fn sigma_dot(&self, t: f64) -> f64;
    fn scale(&self, t: f64) -> f64;
    fn scale_dot(&self, t: f64) -> f64;
}

/// Euler steps in (x, t) between the times of the given VE levels.
pub struct TimeEuler(pub Box<dyn TimeMap>);

impl Integrator for TimeEuler {
    fn integrate(
        &self,
        denoiser: &dyn Denoiser,
        x: &Tensor,
        sigmas: &[f64],
        _: &mut [ChaCha20Rng],
        observe: Observe<'_>,
    ) -> Result<Tensor> {
        let map = &self.0;
        let times: Vec<f64> = sigmas.iter().map(|&s| map.time(s)).collect();
        let mut x = (x * map.scale(times[0]))?;
        for (i, pair) in times.windows(2).enumerate() {
            let (t, t_next) = (pair[0], pair[1]);
            let (sigma, s) = (sigmas[i], map.scale(t));
            let x_ve = (&x / s)?;
            let denoised = denoiser.denoise(&x_ve, sigma)?;
            observe(i, sigma, &x_ve, &denoised)?;
            let sigma_rate = map.sigma_dot(t) / sigma;
            let d = ((&x * (sigma_rate + map.scale_dot(t) / s))? - (denoised * (sigma_rate * s))?)?;
            x = (x + (d * (t_next - t))?)?;
        }
        Ok((x / map.scale(*times.last().expect("checked non-empty")))?)
    }
}
