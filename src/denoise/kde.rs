//! The kernel-smoothed empirical denoiser (THEORY §12): the training set as
//! the isotropic mixture (1/N) sum_i N(y_i, s^2 I).

use candle_core::Tensor;

use super::{Denoiser, EmpiricalDenoiser};
use crate::{Error, Result};

/// D = sum_i w_i [y_i + s^2 / (s^2 + sigma^2) (x - y_i)] with
/// w = softmax(-||x - y_i||^2 / (2 (s^2 + sigma^2))) (THEORY §12): the
/// weights are the empirical denoiser's at sigma' = sqrt(s^2 + sigma^2), so
/// D = a D_N(x; sigma') + (1 - a) x with a = sigma^2 / (s^2 + sigma^2).
#[derive(Debug)]
pub struct KdeDenoiser {
    empirical: EmpiricalDenoiser,
    bandwidth: f64,
}

impl KdeDenoiser {
    /// The rows of `train` ([N, n]) smoothed with bandwidth `bandwidth` >= 0
    /// (0 is the empirical denoiser itself).
    pub fn new(train: &Tensor, bandwidth: f64) -> Result<Self> {
        if !(bandwidth.is_finite() && bandwidth >= 0.0) {
            return Err(Error::invalid(
                "kde bandwidth",
                bandwidth,
                "must be a finite number >= 0",
            ));
        }
        Ok(Self {
            empirical: EmpiricalDenoiser::new(train)?,
            bandwidth,
        })
    }

    /// The bandwidth of `grid` under which the KDE of `train` gives the
    /// held-out rows `held_out` the highest mean log density: ln p(x) =
    /// LSE_i(-||x - y_i||^2 / (2 s^2)) - ln N - (n/2) ln(2 pi s^2), the
    /// empirical log density at noise level s (THEORY §4).
    pub fn fit_bandwidth(train: &Tensor, held_out: &Tensor, grid: &[f64]) -> Result<f64> {
        let empirical = EmpiricalDenoiser::new(train)?;
        let mut best: Option<(f64, f64)> = None;
        for &s in grid {
            let density = empirical
                .log_density(held_out, s)?
                .to_dtype(candle_core::DType::F64)?;
            let mean = density.mean_all()?.to_scalar::<f64>()?;
            if best.is_none_or(|(_, top)| mean > top) {
                best = Some((s, mean));
            }
        }
        best.map(|(s, _)| s).ok_or_else(|| {
            Error::invalid("kde bandwidth grid", "empty", "list at least one bandwidth")
        })
    }

    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// (sigma', a): the empirical denoiser's noise level and its share of D.
    fn mix(&self, sigma: f64) -> (f64, f64) {
        let total = self.bandwidth * self.bandwidth + sigma * sigma;
        (total.sqrt(), sigma * sigma / total)
    }
}

impl Denoiser for KdeDenoiser {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let (wide, a) = self.mix(sigma);
        let d = self.empirical.denoise(x, wide)?;
        Ok(((d * a)? + (x * (1.0 - a))?)?)
    }

    fn dim(&self) -> usize {
        self.empirical.dim()
    }

    /// a J_N(x; sigma') + (1 - a) I, J_N in closed form (THEORY §4).
    fn jacobian(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let (wide, a) = self.mix(sigma);
        let j = self.empirical.jacobian(x, wide)?;
        let n = self.dim();
        let eye = Tensor::eye(n, j.dtype(), j.device())?.unsqueeze(0)?;
        Ok(((j * a)?.broadcast_add(&(eye * (1.0 - a))?))?)
    }

    fn jacobian_method(&self) -> &'static str {
        "closed form (THEORY §4, §12)"
    }

    fn vjp(&self, x: &Tensor, sigma: f64, v: &Tensor) -> Result<Tensor> {
        let (wide, a) = self.mix(sigma);
        let jv = self.empirical.jacobian_vector(x, wide, v)?;
        let v = v.to_dtype(jv.dtype())?;
        Ok(((jv * a)? + (v * (1.0 - a))?)?)
    }
}
