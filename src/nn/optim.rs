//! AdamW, global-norm gradient clipping and an exponential moving average of
//! the weights.
//!
//! candle's tensor ops cost a dispatch and an allocation each, and an AdamW
//! step written with them runs about 15 of each per parameter tensor. On the
//! CPU the update here is instead three fused in-place passes per tensor
//! (first moment, second moment, weights); on other devices it falls back to
//! tensor ops with the same arithmetic. Both follow candle-nn's `AdamW`:
//! theta <- theta (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps).

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ops::ELEMENTS_PER_TASK;
use crate::Result;

/// AdamW's hyperparameters (defaults: PyTorch's, with no weight decay as in EDM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// How an update is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Fused in-place passes over CPU memory.
    FusedCpu,
    /// Ordinary candle tensor ops, on any device.
    TensorOps,
}

impl Kernel {
    /// The fused kernel for f32 CPU tensors, tensor ops otherwise.
    pub fn for_tensor(t: &Tensor) -> Self {
        match t.device().is_cpu() && t.dtype() == DType::F32 {
            true => Kernel::FusedCpu,
            false => Kernel::TensorOps,
        }
    }
}

/// AdamW over a fixed list of variables; `m` and `v` are the moment estimates.
pub struct AdamW {
    pub config: AdamWConfig,
    vars: Vec<Var>,
    pub m: Vec<Var>,
    pub v: Vec<Var>,
    /// Number of updates taken so far (t in the bias corrections).
    pub t: u64,
    kernel: Kernel,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        let m = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let v = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let kernel = vars
            .first()
            .map_or(Kernel::TensorOps, |v| Kernel::for_tensor(v));
        Ok(AdamW {
            config,
            vars,
            m,
            v,
            t: 0,
            kernel,
        })
    }

    /// Forces a kernel (tests and benches compare the two).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// One AdamW update with learning rate `lr`, gradients `grads` (aligned
    /// with the variables) multiplied by `grad_scale` (the clipping factor).
    pub fn step(&mut self, grads: &[Tensor], lr: f64, grad_scale: f64) -> Result<()> {
        self.t += 1;
        let c = &self.config;
        let bias1 = 1.0 - c.beta1.powi(self.t as i32);
        let bias2 = 1.0 - c.beta2.powi(self.t as i32);
        for (((theta, m), v), g) in self.vars.iter().zip(&self.m).zip(&self.v).zip(grads) {
            let g = g.contiguous()?;
            match self.kernel {
                Kernel::FusedCpu => {
                    m.inplace_op2(&g, &Lerp::new(c.beta1, grad_scale, false))?;
                    v.inplace_op2(&g, &Lerp::new(c.beta2, grad_scale, true))?;
                    let update = AdamUpdate {
                        lr: lr as f32,
                        decay: (1.0 - lr * c.weight_decay) as f32,
                        bias1: bias1 as f32,
                        bias2: bias2 as f32,
                        eps: c.eps as f32,
                    };
                    theta.inplace_op3(m, v, &update)?;
                }
                Kernel::TensorOps => {
                    let g = (g * grad_scale)?;
                    m.set(&((m.as_tensor() * c.beta1)? + (&g * (1.0 - c.beta1))?)?)?;
                    v.set(&((v.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?)?;
                    let m_hat = (m.as_tensor() / bias1)?;
                    let v_hat = (v.as_tensor() / bias2)?;
                    let step = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
                    let decayed = (theta.as_tensor() * (1.0 - lr * c.weight_decay))?;
                    theta.set(&(decayed - (step * lr)?)?)?;
                }
            }
        }
        Ok(())
    }
}

/// sqrt of the sum of squares of every element of `tensors`, in f64 (0 for none).
pub fn global_norm(tensors: &[Tensor]) -> Result<f64> {
    let squares = tensors
        .iter()
        .map(|g| g.sqr()?.sum_all()?.to_dtype(DType::F64))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(match squares.is_empty() {
        true => 0.0,
        false => Tensor::stack(&squares, 0)?
            .sum_all()?
            .to_scalar::<f64>()?
            .sqrt(),
    })
}

/// The factor min(1, max_norm / ||g||) that clips the global gradient norm
/// to `max_norm`, and ||g|| itself; no clipping when `max_norm` is infinite.
pub fn clip_scale(grads: &[Tensor], max_norm: f64) -> Result<(f64, f64)> {
    let norm = global_norm(grads)?;
    let scale = match norm > max_norm {
        true => max_norm / norm,
        false => 1.0,
    };
    Ok((norm, scale))
}

/// ema <- decay ema + (1 - decay) theta, for each pair of tensors.
pub fn update_ema(ema: &[Var], vars: &[Var], decay: f64) -> Result<()> {
    for (e, theta) in ema.iter().zip(vars) {
        match Kernel::for_tensor(e) {
            Kernel::FusedCpu => e.inplace_op2(theta.as_tensor(), &Lerp::new(decay, 1.0, false))?,
            Kernel::TensorOps => {
                e.set(&((e.as_tensor() * decay)? + (theta.as_tensor() * (1.0 - decay))?)?)?
            }
        }
    }
    Ok(())
}

/// Contiguous f32 data of a CPU storage.
fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("fused optimizer kernels need contiguous f32 tensors"),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&mut data[start..end]),
        _ => candle_core::bail!("fused optimizer kernels need contiguous f32 tensors"),
    }
}

/// a <- decay a + (1 - decay) f(scale b), with f the identity or the square.
struct Lerp {
    decay: f32,
    scale: f32,
    square: bool,
}

impl Lerp {
    fn new(decay: f64, scale: f64, square: bool) -> Self {
        Lerp {
            decay: decay as f32,
            scale: scale as f32,
            square,
        }
    }
}

impl InplaceOp2 for Lerp {
    fn name(&self) -> &'static str {
        "lerp"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (a, b) = (slice_mut(s1, l1)?, slice(s2, l2)?);
        let (d, e) = (self.decay, 1.0 - self.decay);
        a.par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(b.par_chunks(ELEMENTS_PER_TASK))
            .for_each(|(a, b)| match self.square {
                true => a.iter_mut().zip(b).for_each(|(a, &b)| {
                    let g = self.scale * b;
                    *a = d * *a + e * (g * g)
                }),
                false => a
                    .iter_mut()
                    .zip(b)
                    .for_each(|(a, &b)| *a = d * *a + e * (self.scale * b)),
            });
        Ok(())
    }
}

/// theta <- theta decay - lr (m / bias1) / (sqrt(v / bias2) + eps).
struct AdamUpdate {
    lr: f32,
    decay: f32,
    bias1: f32,
    bias2: f32,
    eps: f32,
}

impl InplaceOp3 for AdamUpdate {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let (theta, m, v) = (slice_mut(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        theta
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(
                m.par_chunks(ELEMENTS_PER_TASK)
                    .zip(v.par_chunks(ELEMENTS_PER_TASK)),
            )
            .for_each(|(theta, (m, v))| {
                for ((theta, &m), &v) in theta.iter_mut().zip(m).zip(v) {
                    let step = (m / self.bias1) / ((v / self.bias2).sqrt() + self.eps);
                    *theta = *theta * self.decay - self.lr * step;
                }
            });
        Ok(())
    }
}
