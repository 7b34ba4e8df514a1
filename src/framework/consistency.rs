//! Consistency training (THEORY §16; Song et al. 2023, with the improved
//! recipe of Song & Dhariwal 2023, "iCT"): the network is a consistency
//! function f(x, sigma), the endpoint at sigma = 0 of the probability-flow
//! ODE through x, not the posterior mean. It is trained without a teacher
//! on pairs of adjacent levels of a discretisation that refines with the
//! step, and sampled from the same VE starting point sigma_max z in one
//! evaluation ([`Consistency::native`]) or a few
//! ([`crate::sample::ConsistencySteps`]).

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Parameterisation, Scalings};
use crate::sample::{ConsistencySteps, Plan};
use crate::Result;

/// iCT's constants (Song & Dhariwal 2023, section 3), with the run's sigma_data.
pub struct Consistency {
    pub sigma_data: f64,
    /// The boundary f(x, sigma_min) = x, and the lowest training level.
    pub sigma_min: f64,
    pub sigma_max: f64,
    pub rho: f64,
    /// How a training row picks its pair (THEORY §16).
    pub pairs: PairWeights,
    /// The curriculum: s0 + 1 levels at the start, doubling to s1 + 1.
    pub s0: u64,
    pub s1: u64,
    /// Consistency distillation: the lower level of a pair is reached by a
    /// teacher's Heun step, not by the same noise (THEORY §16).
    pub distilled: bool,
}

impl Consistency {
    pub fn new(sigma_data: f64) -> Self {
        Consistency {
            sigma_data,
            sigma_min: 0.002,
            sigma_max: 80.0,
            rho: 7.0,
            pairs: PairWeights::Lognormal {
                p_mean: -1.1,
                p_std: 2.0,
            },
            s0: 10,
            s1: 1280,
            distilled: false,
        }
    }

    /// Consistency distillation (Song et al. 2023): the spacing of 18
    /// levels (their CIFAR-10 setting: s0 = s1 = 17), each pair shifted
    /// uniformly between the ends (THEORY §16; Song et al. draw the grid's
    /// pairs alike, [`PairWeights::Uniform`]), its lower point the
    /// teacher's Heun step from the upper one; iCT's distance and target.
    pub fn distillation(sigma_data: f64) -> Self {
        Consistency {
            s0: 17,
            s1: 17,
            pairs: PairWeights::Continuous,
            distilled: true,
            ..Consistency::new(sigma_data)
        }
    }

    /// The one-step sampler x = f(sigma_max z, sigma_max), whatever `steps`
    /// (it is the deterministic map from noise to sample that the paper
    /// compares); the multistep sampler is [`ConsistencySteps`] on a schedule.
    pub fn native(&self, _steps: usize) -> Result<Plan> {
        Ok(Plan {
            sigmas: vec![self.sigma_max, 0.0],
            integrator: Box::new(ConsistencySteps {
                sigma_min: self.sigma_min,
            }),
        })
    }

    /// N(k) = min(s0 2^floor(k / K'), s1) + 1 levels at step k of K, K' =
    /// floor(K / (log2 floor(s1 / s0) + 1)) (iCT's exponential curriculum).
    pub fn level_count(&self, step: u64, steps: u64) -> usize {
        let doublings = (self.s1 / self.s0).ilog2() as u64 + 1;
        let stage = (steps / doublings).max(1);
        // Past `doublings` stages the cap s1 holds; 32 keeps the shift in range.
        let exponent = (step / stage).min(32) as u32;
        self.s0.saturating_mul(1 << exponent).min(self.s1) as usize + 1
    }

    /// The `count` levels sigma_min = sigma_1 < ... < sigma_count = sigma_max,
    /// uniform in sigma^(1/rho) (EDM's schedule, ascending).
    pub fn levels(&self, count: usize) -> Vec<f64> {
        let (lo, hi) = (
            self.sigma_min.powf(1.0 / self.rho),
            self.sigma_max.powf(1.0 / self.rho),
        );
        let last = (count - 1) as f64;
        (0..count)
            .map(|i| (lo + i as f64 / last * (hi - lo)).powf(self.rho))
            .collect()
    }

    /// The pairs of the discretisation with `count` levels.
    pub fn level_pairs_at(&self, count: usize) -> LevelPairs {
        let levels = self.levels(count);
        LevelPairs {
            log_levels: levels.iter().map(|l| l.ln()).collect(),
            levels,
            weights: self.pairs,
            rho: self.rho,
        }
    }
}

/// How a pair of adjacent levels is picked (THEORY §16).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PairWeights {
    /// iCT's: pair i with probability proportional to P(ln sigma_i <= u <
    /// ln sigma_i+1), u ~ N(p_mean, p_std^2).
    Lognormal { p_mean: f64, p_std: f64 },
    /// Song et al.'s: every pair alike.
    Uniform,
    /// Two points one spacing apart (in sigma^(1/rho)) anywhere between
    /// the first and the last level, the upper one uniform: the pairs of
    /// every shift of the discretisation, so f is trained at every level
    /// in between, not only at the grid's.
    Continuous,
}

/// The adjacent levels training draws from at one step (THEORY §16).
pub struct LevelPairs {
    levels: Vec<f64>,
    log_levels: Vec<f64>,
    weights: PairWeights,
    rho: f64,
}

impl LevelPairs {
    /// One pair (sigma_i, sigma_i+1), by the weights: lognormal ones drawn
    /// by rejecting the u outside the levels, uniform ones by one index.
    pub fn draw(&self, rng: &mut ChaCha20Rng) -> (f32, f32) {
        let pair = |i: usize| (self.levels[i] as f32, self.levels[i + 1] as f32);
        let last = self.levels.len() - 1;
        let (p_mean, p_std) = match self.weights {
            PairWeights::Uniform => return pair(rng.gen_range(0..last)),
            PairWeights::Continuous => {
                let (lo, hi) = (
                    self.levels[0].powf(1.0 / self.rho),
                    self.levels[last].powf(1.0 / self.rho),
                );
                let spacing = (hi - lo) / last as f64;
                let upper = rng.gen_range(lo + spacing..=hi);
                let level = |r: f64| r.max(lo).powf(self.rho) as f32;
                return (level(upper - spacing), level(upper));
            }
            PairWeights::Lognormal { p_mean, p_std } => (p_mean, p_std),
        };
        let (first, last) = (self.log_levels[0], self.log_levels[last]);
        loop {
            let normal: f64 = StandardNormal.sample(rng);
            let u = p_mean + p_std * normal;
            if (first..last).contains(&u) {
                return pair(self.log_levels.partition_point(|&l| l <= u) - 1);
            }
        }
    }

    /// The levels, ascending.
    pub fn levels(&self) -> &[f64] {
        &self.levels
    }
}

impl Parameterisation for Consistency {
    /// c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2), c_out = sd (sigma -
    /// sigma_min) / sqrt(sd^2 + sigma^2), so f(x, sigma_min) = x exactly;
    /// c_in and c_noise as EDM's (THEORY §16).
    fn scalings(&self, sigma: &Tensor) -> Result<Scalings> {
        let sd = self.sigma_data;
        let above = (sigma - self.sigma_min)?;
        let total = (sigma.sqr()? + sd * sd)?;
        Ok(Scalings {
            c_skip: ((above.sqr()? + sd * sd)?.recip()? * (sd * sd))?,
            c_out: ((above * sd)? / total.sqrt()?)?,
            c_in: total.sqrt()?.recip()?,
            c_noise: (sigma.log()? / 4.0)?,
        })
    }

    /// EDM's (sigma^2 + sd^2) / (sigma sd)^2. Training does not use it (its
    /// loss is the consistency loss, THEORY §16); the held-out evaluation
    /// weighs f's distance to the clean example with it.
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        let sd = self.sigma_data;
        Ok(((sigma.sqr()? + sd * sd)? / (sigma * sd)?.sqr()?)?)
    }

    /// The upper level of a pair of the finest discretisation.
    fn draw_sigma(&self, rng: &mut ChaCha20Rng) -> f32 {
        let count = self.s1 as usize + 1;
        self.level_pairs_at(count).draw(rng).1
    }

    fn level_pairs(&self, step: u64, steps: u64) -> Option<LevelPairs> {
        Some(self.level_pairs_at(self.level_count(step, steps)))
    }

    fn distills(&self) -> bool {
        self.distilled
    }
}
