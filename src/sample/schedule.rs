//! The Karras et al. (EDM) noise schedule (THEORY §2).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// S noise levels from `sigma_max` down to `sigma_min`, spaced uniformly in sigma^(1/rho).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub steps: usize,
    pub sigma_min: f64,
    pub sigma_max: f64,
    pub rho: f64,
}

impl Default for Schedule {
    /// EDM's defaults: S = 18, sigma_min = 0.002, sigma_max = 80, rho = 7.
    fn default() -> Self {
        Self {
            steps: 18,
            sigma_min: 0.002,
            sigma_max: 80.0,
            rho: 7.0,
        }
    }
}

impl Schedule {
    /// Checks the parameters once, so sampling never has to.
    pub fn validate(&self) -> Result<()> {
        if self.steps < 2 {
            return Err(Error::invalid("steps", self.steps, "need at least 2"));
        }
        if !(self.sigma_min.is_finite() && self.sigma_min > 0.0) {
            return Err(Error::invalid(
                "sigma-min",
                self.sigma_min,
                "must be finite and > 0",
            ));
        }
        if !(self.sigma_max.is_finite() && self.sigma_max > self.sigma_min) {
            return Err(Error::invalid(
                "sigma-max",
                self.sigma_max,
                "must be finite and > sigma-min",
            ));
        }
        if !(self.rho.is_finite() && self.rho > 0.0) {
            return Err(Error::invalid("rho", self.rho, "must be finite and > 0"));
        }
        Ok(())
    }

    /// sigma_i = (smax^(1/rho) + i/(S-1) (smin^(1/rho) - smax^(1/rho)))^rho for
    /// i = 0..S-1, then sigma_S = 0 appended (THEORY §2): S + 1 values.
    pub fn sigmas(&self) -> Result<Vec<f64>> {
        self.validate()?;
        let (lo, hi) = (
            self.sigma_min.powf(1.0 / self.rho),
            self.sigma_max.powf(1.0 / self.rho),
        );
        let last = (self.steps - 1) as f64;
        let mut sigmas: Vec<f64> = (0..self.steps)
            .map(|i| (hi + i as f64 / last * (lo - hi)).powf(self.rho))
            .collect();
        sigmas.push(0.0);
        Ok(sigmas)
    }
}
