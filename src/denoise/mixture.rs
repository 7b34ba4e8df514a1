//! Gaussian mixtures with low-rank-plus-floor covariances: full-covariance
//! mixtures, isotropic mixtures and the mixture of low-rank Gaussians (MoLRG)
//! are all this one type (THEORY §6).

use candle_core::{DType, Device, Tensor, D};
use faer::Mat;

use super::{check_input, softmax_rows, Denoiser};
use crate::linalg::{orthonormality_error, to_tensor};
use crate::{Error, Result};

/// One component: weight pi_k, mean mu_k and covariance
/// C_k = V_k diag(lambda_k) V_k^T + delta_k^2 I with V_k orthonormal n x r_k (THEORY §6).
#[derive(Clone, Debug)]
pub struct Component {
    pub weight: f64,
    pub mean: Vec<f64>,
    /// V_k: orthonormal columns, n x r_k (r_k = 0 for an isotropic component).
    pub basis: Mat<f64>,
    /// lambda_k, one variance per column of `basis`.
    pub variances: Vec<f64>,
    /// delta_k^2, the isotropic floor.
    pub floor: f64,
}

/// A validated mixture; its denoiser and log density are exact and computed in f64.
#[derive(Clone, Debug)]
pub struct Mixture {
    dim: usize,
    components: Vec<Component>,
    tensors: Vec<ComponentTensors>,
}

#[derive(Clone, Debug)]
struct ComponentTensors {
    mean: Tensor,
    /// None when r_k = 0.
    basis: Option<Tensor>,
}

/// Per-component terms at one noise level, for a batch.
struct Posterior {
    /// ln pi_k + ln N(x; mu_k, C_k + sigma^2 I), [B].
    log_joint: Tensor,
    /// mu_k + C_k (C_k + sigma^2 I)^(-1) (x - mu_k), [B, n].
    mean: Tensor,
}

impl Mixture {
    /// Validates the components once: equal dimensions, weights positive and summing
    /// to 1, orthonormal bases, variances and floors finite and non-negative.
    pub fn new(components: Vec<Component>) -> Result<Self> {
        let dim = components
            .first()
            .map(|c| c.mean.len())
            .ok_or_else(|| Error::invalid("components", 0, "a mixture needs at least one"))?;
        let total: f64 = components.iter().map(|c| c.weight).sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(Error::invalid(
                "sum of component weights",
                total,
                "must be 1",
            ));
        }
        let mut tensors = Vec::with_capacity(components.len());
        for (k, c) in components.iter().enumerate() {
            let name = |what: &str| format!("component {k} {what}");
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(Error::invalid(name("weight"), c.weight, "must be > 0"));
            }
            if c.mean.len() != dim || c.basis.nrows() != dim {
                return Err(Error::shape(
                    name("mean/basis rows"),
                    dim,
                    format!("{}/{}", c.mean.len(), c.basis.nrows()),
                ));
            }
            if c.basis.ncols() != c.variances.len() {
                return Err(Error::shape(
                    name("variances"),
                    c.basis.ncols(),
                    c.variances.len(),
                ));
            }
            if let Some(&v) = c.variances.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(Error::invalid(
                    name("variance"),
                    v,
                    "must be finite and >= 0",
                ));
            }
            if !(c.floor.is_finite() && c.floor >= 0.0) {
                return Err(Error::invalid(
                    name("floor"),
                    c.floor,
                    "must be finite and >= 0",
                ));
            }
            if c.mean.iter().any(|m| !m.is_finite()) {
                return Err(Error::invalid(name("mean"), "non-finite", "must be finite"));
            }
            let err = orthonormality_error(&c.basis);
            if err > 1e-8 {
                return Err(Error::invalid(
                    name("basis"),
                    format!("max |V^T V - I| = {err:.2e}"),
                    "columns must be orthonormal",
                ));
            }
            tensors.push(ComponentTensors {
                mean: Tensor::from_slice(&c.mean, (1, dim), &Device::Cpu)?,
                basis: (c.basis.ncols() > 0)
                    .then(|| to_tensor(&c.basis))
                    .transpose()?,
            });
        }
        Ok(Self {
            dim,
            components,
            tensors,
        })
    }

    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Joint log density and posterior mean of component k, in the low-rank form:
    /// O(n r_k) per point, never an n x n inverse (THEORY §6). With a = delta^2 + sigma^2,
    /// (C + sigma^2 I)^(-1) = (I - V V^T) / a + V diag(1 / (lambda + a)) V^T and
    /// ln det(C + sigma^2 I) = (n - r) ln a + sum_j ln(lambda_j + a).
    fn posterior(&self, k: usize, x: &Tensor, sigma: f64) -> Result<Posterior> {
        let (c, t) = (&self.components[k], &self.tensors[k]);
        let a = c.floor + sigma * sigma;
        let n = self.dim as f64;
        let diff = x.broadcast_sub(&t.mean)?;
        let floor_gain = c.floor / a;
        let (quad, log_det, mean) = match &t.basis {
            None => (
                (diff.sqr()?.sum(1)? / a)?,
                n * a.ln(),
                (diff.clone() * floor_gain)?.broadcast_add(&t.mean)?,
            ),
            Some(v) => {
                let r = c.variances.len();
                let row = |f: &dyn Fn(f64) -> f64| -> Result<Tensor> {
                    let values: Vec<f64> = c.variances.iter().map(|&l| f(l)).collect();
                    Ok(Tensor::from_vec(values, (1, r), &Device::Cpu)?)
                };
                let proj = diff.matmul(v)?;
                // The residual is formed explicitly: subtracting ||proj||^2 from ||diff||^2 cancels badly as sigma -> 0.
                let residual = (&diff - proj.matmul(&v.t()?)?)?;
                let in_span = proj
                    .sqr()?
                    .broadcast_mul(&row(&|l| 1.0 / (l + a))?)?
                    .sum(1)?;
                let quad = ((residual.sqr()?.sum(1)? / a)? + in_span)?;
                let log_det =
                    (n - r as f64) * a.ln() + c.variances.iter().map(|l| (l + a).ln()).sum::<f64>();
                let coef = row(&|l| (l + c.floor) / (l + a) - floor_gain)?;
                let mean = ((diff * floor_gain)? + proj.broadcast_mul(&coef)?.matmul(&v.t()?)?)?
                    .broadcast_add(&t.mean)?;
                (quad, log_det, mean)
            }
        };
        let constant = c.weight.ln() - 0.5 * (n * (2.0 * std::f64::consts::PI).ln() + log_det);
        Ok(Posterior {
            log_joint: ((quad * -0.5)? + constant)?,
            mean,
        })
    }

    fn posteriors(&self, x: &Tensor, sigma: f64) -> Result<Vec<Posterior>> {
        check_input(x, self.dim, sigma)?;
        let xs = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        (0..self.components.len())
            .map(|k| self.posterior(k, &xs, sigma))
            .collect()
    }

    fn log_joints(posteriors: &[Posterior]) -> Result<Tensor> {
        let columns: Vec<&Tensor> = posteriors.iter().map(|p| &p.log_joint).collect();
        Ok(Tensor::stack(&columns, 1)?)
    }

    /// Responsibilities r_k(x) = softmax_k(ln pi_k + ln N(x; mu_k, C_k + sigma^2 I)), [B, K].
    pub fn responsibilities(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let logits = Self::log_joints(&self.posteriors(x, sigma)?)?;
        softmax_rows(&logits)
    }

    /// ln p_sigma(x) = LSE_k(ln pi_k + ln N(x; mu_k, C_k + sigma^2 I)), \[B\], in f64.
    pub fn log_density(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let logits = Self::log_joints(&self.posteriors(x, sigma)?)?;
        let max = logits.max_keepdim(D::Minus1)?;
        let total = logits.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?;
        Ok((max + total.log()?)?.squeeze(1)?)
    }
}

impl Denoiser for Mixture {
    /// D(x; sigma) = sum_k r_k(x) [mu_k + C_k (C_k + sigma^2 I)^(-1) (x - mu_k)] (THEORY §6).
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let posteriors = self.posteriors(x, sigma)?;
        let r = softmax_rows(&Self::log_joints(&posteriors)?)?;
        let mut d = None;
        for (k, p) in posteriors.iter().enumerate() {
            let term = p.mean.broadcast_mul(&r.narrow(1, k, 1)?)?;
            d = Some(match d {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
        let d: Tensor = d.expect("a mixture has at least one component");
        Ok(d.to_dtype(x.dtype())?.to_device(x.device())?)
    }

    fn dim(&self) -> usize {
        self.dim
    }
}
