//! Rectified flow / conditional flow matching (THEORY §9): x_t = (1 - t) y +
//! t z, velocity target z - y; in VE terms t = sigma / (1 + sigma), x_t =
//! x_VE / (1 + sigma), D = x_t - t v(x_t, t), and the velocity loss is
//! ||D - y||^2 / t^2. Sampled by Euler in t.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{check_steps, linspace, Parameterisation, Scalings};
use crate::sample::{Plan, TimeEuler, TimeMap};
use crate::Result;

/// How training draws t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlowTime {
    /// t = 1 / (1 + e^-u), u ~ N(0, 1) (Esser et al. 2024).
    LogitNormal,
    /// t uniform in [T_MIN, 1 - T_MIN].
    Uniform,
}

/// Training times stay this far from 0 and 1, where sigma is 0 or infinite.
const T_MIN: f64 = 1e-5;

#[derive(Clone, Copy)]
pub struct Flow {
    pub time: FlowTime,
    /// Where the sampler starts: x_t = t_max z (x_1 = z would be sigma = infinity).
    pub t_max: f64,
}

impl Flow {
    pub fn new(time: FlowTime) -> Self {
        Flow { time, t_max: 0.999 }
    }

    /// Euler in t on `steps` equal steps from t_max to 0.
    pub fn native(&self, steps: usize) -> Result<Plan> {
        check_steps(steps)?;
        let sigmas = linspace(self.t_max, 0.0, steps + 1)
            .into_iter()
            .map(|t| FlowMap.sigma(t))
            .collect();
        Ok(Plan {
            sigmas,
            integrator: Box::new(TimeEuler(Box::new(FlowMap))),
        })
    }
}

/// t = sigma / (1 + sigma), s = 1 - t.
struct FlowMap;

impl TimeMap for FlowMap {
    fn time(&self, sigma: f64) -> f64 {
        sigma / (1.0 + sigma)
    }

    fn sigma(&self, t: f64) -> f64 {
        t / (1.0 - t)
    }

    fn sigma_dot(&self, t: f64) -> f64 {
        1.0 / ((1.0 - t) * (1.0 - t))
    }

    fn scale(&self, t: f64) -> f64 {
        1.0 - t
    }

    fn scale_dot(&self, _: f64) -> f64 {
        -1.0
    }
}

impl Parameterisation for Flow {
    /// c_skip = c_in = 1 / (1 + sigma), c_out = -sigma / (1 + sigma), c_noise = t.
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        let c_in = (sigma + 1.0)?.recip()?;
        let t = (sigma * &c_in)?;
        Ok(Scalings {
            c_skip: c_in.clone(),
            c_out: t.neg()?,
            c_in,
            c_noise: t,
        })
    }

    /// 1 / t^2 = (1 + sigma)^2 / sigma^2: the loss ||v - (z - y)||^2.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        Ok(((sigma + 1.0)? / sigma)?.sqr()?)
    }

    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        let t = match self.time {
            FlowTime::LogitNormal => {
                let u: f64 = StandardNormal.sample(rng);
                1.0 / (1.0 + (-u).exp())
            }
            FlowTime::Uniform => rng.gen::<f64>(),
        };
        FlowMap.sigma(t.clamp(T_MIN, 1.0 - T_MIN)) as f32
    }
}
