//! The Gaussian (linear, Wiener) denoiser (THEORY §5) and its exact probability flow (THEORY §2).

use candle_core::{DType, Device, Tensor};
use faer::Mat;

use super::{check_input, Denoiser};
use crate::linalg::{spectral, symmetric_eigen, to_mat, to_tensor};
use crate::{Error, Result};

/// The posterior mean for data N(mu, Sigma), Sigma = U diag(lambda) U^T:
/// D(x; sigma) = mu + U diag(lambda / (lambda + sigma^2)) U^T (x - mu) (THEORY §5).
/// Computed in f64.
#[derive(Debug)]
pub struct GaussianDenoiser {
    mean: Tensor,
    basis: Tensor,
    eigenvalues: Vec<f64>,
}

impl GaussianDenoiser {
    /// From a mean (length n) and a symmetric PSD covariance (n x n), by eigendecomposition.
    pub fn new(mean: &[f64], covariance: &Mat<f64>) -> Result<Self> {
        let n = mean.len();
        if covariance.nrows() != n || covariance.ncols() != n {
            return Err(Error::shape(
                "Gaussian covariance",
                format!("[{n}, {n}]"),
                format!("[{}, {}]", covariance.nrows(), covariance.ncols()),
            ));
        }
        let (eigenvalues, basis) = symmetric_eigen(covariance)?;
        // Round-off can leave PSD eigenvalues slightly negative.
        let eigenvalues = eigenvalues.into_iter().map(|l| l.max(0.0)).collect();
        Self::from_eigen(mean, &basis, eigenvalues)
    }

    /// From a mean, a complete orthonormal eigenbasis (the n columns of `basis`)
    /// and its n eigenvalues.
    pub fn from_eigen(mean: &[f64], basis: &Mat<f64>, eigenvalues: Vec<f64>) -> Result<Self> {
        if let Some(&bad) = eigenvalues.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
            return Err(Error::invalid(
                "covariance eigenvalue",
                bad,
                "must be finite and >= 0",
            ));
        }
        let n = mean.len();
        if basis.nrows() != n || basis.ncols() != n || eigenvalues.len() != n {
            return Err(Error::shape(
                "Gaussian eigenbasis and eigenvalues",
                format!("[{n}, {n}] and {n} values"),
                format!(
                    "[{}, {}] and {} values",
                    basis.nrows(),
                    basis.ncols(),
                    eigenvalues.len()
                ),
            ));
        }
        Ok(Self {
            mean: Tensor::from_slice(mean, (1, mean.len()), &Device::Cpu)?,
            basis: to_tensor(basis)?,
            eigenvalues,
        })
    }

    /// Fitted to the rows of `data` ([N, n]): empirical mean and the maximum-likelihood
    /// covariance (1/N) sum_i (y_i - mean)(y_i - mean)^T, the "hidden Gaussian structure".
    pub fn fit(data: &Tensor) -> Result<Self> {
        let count = match data.dims() {
            [count, _] if *count > 0 => *count,
            dims => {
                return Err(Error::shape(
                    "data to fit",
                    "[N > 0, n]",
                    format!("{dims:?}"),
                ))
            }
        };
        let data = data.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        let mean = data.mean_keepdim(0)?;
        let centred = data.broadcast_sub(&mean)?;
        let covariance = (centred.t()?.matmul(&centred)? / count as f64)?;
        Self::new(&mean.squeeze(0)?.to_vec1::<f64>()?, &to_mat(&covariance)?)
    }

    /// The mean mu.
    pub fn mean(&self) -> Result<Vec<f64>> {
        Ok(self.mean.squeeze(0)?.to_vec1::<f64>()?)
    }

    /// The covariance U diag(lambda) U^T.
    pub fn covariance(&self) -> Result<Mat<f64>> {
        Ok(spectral(&to_mat(&self.basis)?, &self.eigenvalues))
    }

    /// The covariance eigenvalues, ascending.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// x(s_a) - mu in the eigenbasis, scaled per direction by `gain`, mapped back and shifted by mu.
    fn apply_spectral(&self, x: &Tensor, gain: impl Fn(f64) -> f64) -> Result<Tensor> {
        let xs = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        let gains: Vec<f64> = self.eigenvalues.iter().map(|&l| gain(l)).collect();
        let gains = Tensor::from_vec(gains, (1, self.eigenvalues.len()), &Device::Cpu)?;
        let coords = xs.broadcast_sub(&self.mean)?.matmul(&self.basis)?;
        let out = coords
            .broadcast_mul(&gains)?
            .matmul(&self.basis.t()?)?
            .broadcast_add(&self.mean)?;
        Ok(out.to_dtype(x.dtype())?.to_device(x.device())?)
    }

    /// The exact probability-flow ODE solution from s_a to s_b (THEORY §2):
    /// x(s_b) = mu + U diag(sqrt((lambda + s_b^2) / (lambda + s_a^2))) U^T (x(s_a) - mu).
    pub fn flow(&self, x: &Tensor, s_a: f64, s_b: f64) -> Result<Tensor> {
        check_input(x, self.dim(), s_a)?;
        if !(s_b.is_finite() && s_b >= 0.0) {
            return Err(Error::invalid(
                "target sigma",
                s_b,
                "must be finite and >= 0",
            ));
        }
        self.apply_spectral(x, |l| ((l + s_b * s_b) / (l + s_a * s_a)).sqrt())
    }
}

impl Denoiser for GaussianDenoiser {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        check_input(x, self.dim(), sigma)?;
        let s2 = sigma * sigma;
        self.apply_spectral(x, |l| l / (l + s2))
    }

    fn dim(&self) -> usize {
        self.mean.dims()[1]
    }
}
