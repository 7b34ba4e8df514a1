//! The empirical optimal (memorizing) denoiser of a training set (THEORY §4).

use candle_core::{DType, Device, Tensor};

use super::softmax_mean::SoftmaxMean;
use super::sparse_weights::{weighted_second_moment, weighted_sum};
use super::{check_input, softmax_rows, Denoiser};
use crate::{Error, Result};

/// The exact posterior mean for the empirical distribution of N training
/// points, p_sigma = (1/N) sum_i N(y_i, sigma^2 I) (THEORY §4).
///
/// Computation runs in the dtype of the training tensor, streaming over blocks
/// of training points with a running log-sum-exp, so memory is O(B x block),
/// never O(B x N).
#[derive(Debug)]
pub struct EmpiricalDenoiser {
    /// The training points are both the keys and the values.
    points: SoftmaxMean,
    count: usize,
    dim: usize,
}

impl EmpiricalDenoiser {
    /// The most training points per block, for large n: large enough that
    /// both GEMMs run near peak (2048 kept 0.71-0.83 of bare-GEMM throughput
    /// at N = 50k, n = 3072, f32; 8192 keeps 0.94), small enough that
    /// B x block logits stay at 16 MB for B = 256 in f64.
    pub const DEFAULT_CHUNK: usize = 8192;

    /// Training points per block for dimension n: 32 n rounded up to a power
    /// of two, between 1024 and [`Self::DEFAULT_CHUNK`]. At small n the GEMMs
    /// are cheap and the B x block logits' memory traffic decides, so smaller
    /// blocks, whose logits stay in cache, win: at N = 50k, n = 64 a call took
    /// 34-41 ms (f32) and 72-92 ms (f64) at 2048 against 43-49 and 92-108 at
    /// 8192 (1024: 40-42 and 64-78); at n = 784, 4096-8192 is as fast as any,
    /// and at 3072 8192 is fastest (BENCHMARKS.md).
    pub fn chunk_for(dim: usize) -> usize {
        (32 * dim)
            .next_power_of_two()
            .clamp(1024, Self::DEFAULT_CHUNK)
    }

    /// The denoiser of the rows of `train` ([N, n]), computed in its dtype,
    /// in blocks of [`Self::chunk_for`] n points. It holds the training set
    /// twice, once transposed for the logits GEMM.
    pub fn new(train: &Tensor) -> Result<Self> {
        let dim = train.dims().last().copied().unwrap_or(0);
        Self::with_chunk(train, Self::chunk_for(dim))
    }

    /// As [`EmpiricalDenoiser::new`] with at most `chunk` training points per block.
    pub fn with_chunk(train: &Tensor, chunk: usize) -> Result<Self> {
        let (count, dim) = match train.dims() {
            [count, dim] if *count > 0 && *dim > 0 => (*count, *dim),
            dims => {
                return Err(Error::shape(
                    "training set",
                    "[N > 0, n > 0]",
                    format!("{dims:?}"),
                ))
            }
        };
        if chunk == 0 {
            return Err(Error::invalid("chunk", chunk, "must be at least 1"));
        }
        let train = train.contiguous()?;
        let points = SoftmaxMean::new(train.clone(), train, chunk)?;
        Ok(Self { points, count, dim })
    }

    /// Number of training points N.
    pub fn train_size(&self) -> usize {
        self.count
    }

    fn dtype(&self) -> DType {
        self.points.values().dtype()
    }

    fn device(&self) -> &Device {
        self.points.values().device()
    }

    /// The training set, [N, n].
    pub fn train(&self) -> Result<Tensor> {
        Ok(self.points.values().clone())
    }

    fn prepare(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        check_input(x, self.dim, sigma)?;
        Ok(x.to_dtype(self.dtype())?.to_device(self.device())?)
    }

    /// D(x_b; sigma_b) for every row b of `x` `[B, n]` at its own noise
    /// level `sigmas[b]` (THEORY §4), in the training set's dtype: the dense
    /// path (memory O(B x N)), for the target of a training batch (THEORY §15).
    pub fn denoise_rows(&self, x: &Tensor, sigmas: &[f64]) -> Result<Tensor> {
        let b = x.dim(0)?;
        if sigmas.len() != b {
            return Err(Error::shape("noise levels", b, sigmas.len()));
        }
        for &sigma in sigmas {
            check_input(x, self.dim, sigma)?;
        }
        let x = x.to_dtype(self.dtype())?.to_device(self.device())?;
        let precision: Vec<f64> = sigmas.iter().map(|s| 1.0 / (s * s)).collect();
        let precision =
            Tensor::from_vec(precision, (b, 1), self.device())?.to_dtype(self.dtype())?;
        let logits = self.logits(&x, 1.0)?.broadcast_mul(&precision)?;
        Ok(softmax_rows(&logits)?.matmul(&self.train()?)?)
    }

    /// The logits of every training point for the rows of `x` (already in
    /// the training set's dtype and device) at noise level `sigma`, [B, N].
    fn logits(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let logits: Vec<Tensor> = (self.points.blocks(x, sigma)?.iter())
            .map(|block| SoftmaxMean::logits(block, x, sigma))
            .collect::<Result<_>>()?;
        Ok(Tensor::cat(&logits, 1)?)
    }

    /// Softmax weights w_i(x) over all N training points, [B, N] (THEORY §4).
    /// Memory O(B x N): the slow, direct path, for analysis and as a reference.
    pub fn weights(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let x = self.prepare(x, sigma)?;
        softmax_rows(&self.logits(&x, sigma)?)
    }

    /// ln p_sigma(x) of the empirical noisy distribution, \[B\]:
    /// LSE_i(-||x - y_i||^2 / (2 sigma^2)) - ln N - (n/2) ln(2 pi sigma^2).
    pub fn log_density(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let xs = self.prepare(x, sigma)?;
        let acc = self.points.stream(&xs, sigma, |_, _, _| Ok(()))?;
        let lse = (acc.max + acc.total.log()?)?.squeeze(1)?;
        let x_term = (xs.sqr()?.sum(1)? * (-0.5 / (sigma * sigma)))?;
        let n = self.dim as f64;
        let constant =
            -(self.count as f64).ln() - 0.5 * n * (2.0 * std::f64::consts::PI * sigma * sigma).ln();
        Ok(((lse + x_term)? + constant)?.to_dtype(x.dtype())?)
    }

    /// Closed-form Jacobian dD/dx = (sum_i w_i y_i y_i^T - D D^T) / sigma^2
    /// (THEORY §4), one [n, n] matrix per row: [B, n, n]. On the CPU path
    /// both sums visit only the weights above the cutoff where few are.
    pub fn jacobian(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let xs = self.prepare(x, sigma)?;
        let mut mean: Option<Tensor> = None;
        let mut second: Option<Tensor> = None;
        let acc = self.points.stream(&xs, sigma, |block, p, rescale| {
            let py = weighted_sum(p, &block.values)?;
            let pyy = weighted_second_moment(p, &block.values)?;
            let (m, s) = match (mean.take(), second.take(), rescale) {
                (Some(m), Some(s), Some(r)) => (
                    (m.broadcast_mul(r)? + py)?,
                    (s.broadcast_mul(&r.unsqueeze(2)?)? + pyy)?,
                ),
                _ => (py, pyy),
            };
            mean = Some(m);
            second = Some(s);
            Ok(())
        })?;
        let mean = mean
            .expect("streamed at least one block")
            .broadcast_div(&acc.total)?;
        let second = second
            .expect("streamed at least one block")
            .broadcast_div(&acc.total.unsqueeze(2)?)?;
        let outer = mean.unsqueeze(2)?.broadcast_mul(&mean.unsqueeze(1)?)?;
        Ok(((second - outer)? / (sigma * sigma))?.to_dtype(x.dtype())?)
    }

    /// The Jacobian times `v` ([B, n]) without forming it: the Jacobian is
    /// symmetric (THEORY §4), so (dD/dx)^T v = (sum_i w_i y_i (y_i . v) -
    /// D (D . v)) / sigma^2. Through the weights, memory O(B x N).
    pub fn jacobian_vector(&self, x: &Tensor, sigma: f64, v: &Tensor) -> Result<Tensor> {
        let w = self.weights(x, sigma)?;
        let (y, v) = (self.train()?, v.to_dtype(self.dtype())?);
        let d = w.matmul(&y)?;
        let along = (w * v.matmul(&y.t()?)?)?.matmul(&y)?;
        let d_dot_v = (&d * &v)?.sum_keepdim(1)?;
        let jv = ((along - d.broadcast_mul(&d_dot_v)?)? / (sigma * sigma))?;
        Ok(jv.to_dtype(x.dtype())?)
    }
}

impl Denoiser for EmpiricalDenoiser {
    /// D_N(x; sigma) = sum_i w_i(x) y_i, w = softmax_i(l_i) (THEORY §4).
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let xs = self.prepare(x, sigma)?;
        let d = self.points.mean(&xs, sigma)?;
        Ok(d.to_dtype(x.dtype())?.to_device(x.device())?)
    }

    fn jacobian(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        EmpiricalDenoiser::jacobian(self, x, sigma)
    }

    fn jacobian_method(&self) -> &'static str {
        "closed form (THEORY §4)"
    }

    fn vjp(&self, x: &Tensor, sigma: f64, v: &Tensor) -> Result<Tensor> {
        self.jacobian_vector(x, sigma, v)
    }

    fn dim(&self) -> usize {
        self.dim
    }
}
