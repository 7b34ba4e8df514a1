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
        self.interval_of(values.len(), |rows| {
            rows.iter().map(|&i| values[i]).sum::<f64>() / rows.len() as f64
        })
    }

    /// The percentile interval of `statistic` over resamples of `m` units
    /// (it gets the drawn unit indices, with repeats). Resamples where it is
    /// not finite (e.g. a fit with too few points) are dropped; NaN when
    /// fewer than half remain.
    pub fn interval_of(&self, m: usize, statistic: impl Fn(&[usize]) -> f64) -> [f64; 2] {
        if m == 0 || self.resamples == 0 {
            return [f64::NAN, f64::NAN];
        }
        let mut rng = stream(self.seed, Purpose::Bootstrap, 0);
        let mut values: Vec<f64> = (0..self.resamples)
            .map(|_| statistic(&(0..m).map(|_| rng.gen_range(0..m)).collect::<Vec<_>>()))
            .filter(|v| v.is_finite())
            .collect();
        if 2 * values.len() < self.resamples {
            return [f64::NAN, f64::NAN];
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| quantile(&values, q).expect("at least one resample");
        [at(0.025), at(0.975)]
    }
}
