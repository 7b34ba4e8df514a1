//! Exact posterior denoisers given measurements y = A x + s_y e (THEORY §11):
//! for the empirical prior (the memorizing reference of every solver) and for
//! a Gaussian prior. Each is itself a [`Denoiser`], E[x_0 | x_sigma = x, y],
//! so any sampler draws from the exact posterior; row b of its input belongs
//! to measurement b.

use candle_core::{DType, Device, Tensor};
use faer::Mat;

use super::Operator;
use crate::denoise::{check_input, softmax_rows, Denoiser, GaussianDenoiser};
use crate::linalg::{spectral, symmetric_eigen, to_mat, to_tensor};
use crate::spec::{training_rows, DenoiserSpec};
use crate::{Error, Result};

/// The posterior of the empirical distribution of N training points: weights
/// softmax_i((x . y_i - ||y_i||^2 / 2) / sigma^2 - ||y - A y_i||^2 / (2 s_y^2)).
/// Computed in the training set's dtype; memory O(B x N).
#[derive(Debug)]
pub struct EmpiricalPosterior {
    train: Tensor,
    half_sq_norm: Tensor,
    log_likelihood: Tensor,
}

impl EmpiricalPosterior {
    /// For the rows of `train` [N, n], operator `a`, `measurements` [B, m]
    /// and measurement noise `noise_y` > 0.
    pub fn new(train: &Tensor, a: &Operator, measurements: &Tensor, noise_y: f64) -> Result<Self> {
        positive_noise(noise_y)?;
        let train = train.contiguous()?;
        let y = measurements.to_dtype(train.dtype())?;
        let ay = a.apply(&train)?;
        let squared = |t: &Tensor| t.sqr()?.sum_keepdim(1);
        // ||y - A y_i||^2 = ||y||^2 + ||A y_i||^2 - 2 y . A y_i, [B, N].
        let distance =
            (squared(&y)?.broadcast_add(&squared(&ay)?.t()?)? - (y.matmul(&ay.t()?)? * 2.0)?)?;
        Ok(Self {
            half_sq_norm: (squared(&train)?.t()? * 0.5)?,
            log_likelihood: (distance * (-0.5 / (noise_y * noise_y)))?,
            train,
        })
    }

    /// p(y_i | y) for each measurement, [B, N]: the posterior over training
    /// points before any noise level enters (sigma -> infinity).
    pub fn point_weights(&self) -> Result<Tensor> {
        softmax_rows(&self.log_likelihood)
    }

    /// The posterior mean sum_i p(y_i | y) y_i, [B, n].
    pub fn mean(&self) -> Result<Tensor> {
        Ok(self.point_weights()?.matmul(&self.train)?)
    }
}

impl Denoiser for EmpiricalPosterior {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        check_rows(x, self.dim(), sigma, self.log_likelihood.dims()[0])?;
        let xs = x.to_dtype(self.train.dtype())?;
        let logits = (xs
            .matmul(&self.train.t()?)?
            .broadcast_sub(&self.half_sq_norm)?
            / (sigma * sigma))?;
        let weights = softmax_rows(&(logits + &self.log_likelihood)?)?;
        Ok(weights.matmul(&self.train)?.to_dtype(x.dtype())?)
    }

    fn dim(&self) -> usize {
        self.train.dims()[1]
    }
}

/// The posterior of a Gaussian prior N(mu, S): N(mu_b, S_post) with
/// mu_b = mu + K (y_b - A mu), K = S A^T (A S A^T + s_y^2 I)^(-1) and
/// S_post = S - K A S; its denoiser is mu_b + the Gaussian denoiser of
/// N(0, S_post) applied to x - mu_b. Computed in f64.
#[derive(Debug)]
pub struct GaussianPosterior {
    means: Tensor,
    centred: GaussianDenoiser,
}

impl GaussianPosterior {
    pub fn new(
        prior: &GaussianDenoiser,
        a: &Operator,
        measurements: &Tensor,
        noise_y: f64,
    ) -> Result<Self> {
        positive_noise(noise_y)?;
        let s = prior.covariance()?;
        let mu = prior.mean()?;
        let am = to_mat(&a.apply(&Tensor::from_slice(&mu, (1, mu.len()), &Device::Cpu)?)?)?;
        let matrix = a.matrix()?;
        // G = A S A^T + s_y^2 I.
        let mut g = &matrix * &s * matrix.transpose();
        for i in 0..g.nrows() {
            g[(i, i)] += noise_y * noise_y;
        }
        let (values, basis) = symmetric_eigen(&g)?;
        let reciprocals: Vec<f64> = values.iter().map(|v| v.recip()).collect();
        let g_inverse = spectral(&basis, &reciprocals);
        let gain = &s * matrix.transpose() * &g_inverse;
        let y = to_mat(&measurements.to_dtype(DType::F64)?.to_device(&Device::Cpu)?)?;
        let means = Mat::from_fn(y.nrows(), mu.len(), |b, i| {
            mu[i]
                + (0..y.ncols())
                    .map(|k| gain[(i, k)] * (y[(b, k)] - am[(0, k)]))
                    .sum::<f64>()
        });
        let post = &s - &gain * &matrix * &s;
        let symmetric = Mat::from_fn(post.nrows(), post.ncols(), |i, j| {
            0.5 * (post[(i, j)] + post[(j, i)])
        });
        Ok(Self {
            means: to_tensor(&means)?,
            centred: GaussianDenoiser::new(&vec![0.0; mu.len()], &symmetric)?,
        })
    }

    /// The posterior means mu_b, [B, n].
    pub fn mean(&self) -> &Tensor {
        &self.means
    }
}

impl Denoiser for GaussianPosterior {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        check_rows(x, self.dim(), sigma, self.means.dims()[0])?;
        let xs = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        let d = (self.centred.denoise(&(xs - &self.means)?, sigma)? + &self.means)?;
        Ok(d.to_dtype(x.dtype())?.to_device(x.device())?)
    }

    fn dim(&self) -> usize {
        self.means.dims()[1]
    }
}

/// The exact posterior of the prior `spec` names, for `measurements` [B, m]:
/// `empirical:T.npy` (computed in `dtype`) or `gaussian:T.npy`; other kinds
/// have no closed-form posterior.
pub fn exact_posterior(
    spec: &DenoiserSpec,
    dtype: DType,
    a: &Operator,
    measurements: &Tensor,
    noise_y: f64,
) -> Result<Box<dyn Denoiser>> {
    let rows = || training_rows(spec.path(), dtype);
    match spec.kind().name {
        "empirical" => Ok(Box::new(EmpiricalPosterior::new(
            &rows()?.to_dtype(dtype)?,
            a,
            measurements,
            noise_y,
        )?)),
        "gaussian" => Ok(Box::new(GaussianPosterior::new(
            &GaussianDenoiser::fit(&rows()?)?,
            a,
            measurements,
            noise_y,
        )?)),
        other => Err(Error::invalid(
            "denoiser",
            other,
            "the exact posterior exists for the empirical and gaussian priors only",
        )),
    }
}

fn positive_noise(noise_y: f64) -> Result<()> {
    match noise_y.is_finite() && noise_y > 0.0 {
        true => Ok(()),
        false => Err(Error::invalid(
            "noise-y",
            noise_y,
            "an exact posterior needs measurement noise > 0 (use a small value for the noiseless limit)",
        )),
    }
}

/// `x` is [rows, n] at a valid sigma: one row per measurement.
fn check_rows(x: &Tensor, n: usize, sigma: f64, rows: usize) -> Result<()> {
    check_input(x, n, sigma)?;
    match x.dims()[0] == rows {
        true => Ok(()),
        false => Err(Error::shape(
            "posterior denoiser input",
            format!("[{rows}, {n}] (one row per measurement)"),
            format!("{:?}", x.dims()),
        )),
    }
}
