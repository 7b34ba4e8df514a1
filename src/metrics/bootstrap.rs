//! Bootstrap 95% intervals of a mean over samples (THEORY §7: every score is
//! reported with one).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::curves::quantile;
use crate::rng::{stream, Purpose};

/// How many resamples, drawn from stream (seed, Bootstrap, 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 1000,
            seed: 0,
        }
    }
}

impl Bootstrap {
    /// The percentile interval [q_2.5%, q_97.5%] of the means of `resamples`
    /// resamples (with replacement, of the same size) of `values`.
    pub fn interval(&self, values: &[f64]) -> [f64; 2] {
        let m = values.len();
        if m == 0 || self.resamples == 0 {
            return [f64::NAN, f64::NAN];
        }
        let mut rng = stream(self.seed, Purpose::Bootstrap, 0);
        let mut means: Vec<f64> = (0..self.resamples)
            .map(|_| (0..m).map(|_| values[rng.gen_range(0..m)]).sum::<f64>() / m as f64)
            .collect();
        means.sort_by(f64::total_cmp);
        let at = |q: f64| quantile(&means, q).expect("at least one resample");
        [at(0.025), at(0.975)]
    }
}
