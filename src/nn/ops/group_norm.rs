//! Group normalization, optionally fused with the SiLU that follows it, as
//! one pass forward and one backward (candle's GroupNorm is a chain of about
//! ten tensor ops, each allocating, and autodiff walks them all back).
//!
//! Per image b and group g of channels, with mean mu and variance v over the
//! group's C/G channels and H W pixels (accumulated in f64):
//! x^ = (x - mu) / sqrt(v + eps), a = gamma_c x^ + beta_c, y = a or silu(a).
//! Backward: da = dy (silu: dy s (1 + a (1 - s)), s = sigmoid(a));
//! dbeta_c = sum da, dgamma_c = sum da x^, and with d = gamma_c da,
//! dx = (d - mean(d) - x^ mean(d x^)) / sqrt(v + eps), means over the group.
//! Work splits over (b, g); the per-channel sums add the images in order, so
//! the bits do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

use super::{f32_data, runs_here, values};
use crate::Result;

/// Group norm with learnt per-channel scale and shift (weights named
/// `weight` and `bias`, initialised to 1 and 0, as candle-nn's).
#[derive(Clone, Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    pub fn new(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(crate::Error::invalid(
                "group norm groups",
                groups,
                format!("must divide the {channels} channels"),
            ));
        }
        Ok(GroupNorm {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            groups,
            eps,
        })
    }

    /// The normalized `x` [B, C, ...].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, false)
    }

    /// silu(group norm(x)), fused.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x, true)
    }

    fn apply(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        let op = GroupNormOp {
            groups: self.groups,
            eps: self.eps,
            silu,
        };
        if runs_here(x) {
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?);
        }
        op.reference(x, &self.weight, &self.bias)
    }
}

#[derive(Clone, Copy)]
struct GroupNormOp {
    groups: usize,
    eps: f64,
    silu: bool,
}

/// (batch, channels, pixels) of x [B, C, ...].
fn dims(shape: &Shape) -> candle_core::Result<(usize, usize, usize)> {
    match shape.dims() {
        [b, c, rest @ ..] if !rest.is_empty() => Ok((*b, *c, rest.iter().product())),
        dims => candle_core::bail!("group norm needs [B, C, ...], got {dims:?}"),
    }
}

fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + (-a).exp())
}

impl GroupNormOp {
    /// Mean and 1 / sqrt(variance + eps) of one group's values.
    fn stats(&self, x: &[f32]) -> (f32, f32) {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean as f32, (1.0 / (var + self.eps).sqrt()) as f32)
    }

    /// The same function from candle's tensor ops (other dtypes and devices).
    fn reference(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Tensor> {
        let channels = x.dim(1)?;
        let norm = candle_nn::GroupNorm::new(
            gamma.clone(),
            beta.clone(),
            channels,
            self.groups,
            self.eps,
        )?;
        let y = candle_nn::Module::forward(&norm, x)?;
        Ok(if self.silu { y.silu()? } else { y })
    }
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group-norm-silu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, gamma, beta) = (
            f32_data(s1, l1, "group norm")?,
            f32_data(s2, l2, "group norm")?,
            f32_data(s3, l3, "group norm")?,
        );
        let (_, channels, pixels) = dims(l1.shape())?;
        let per_group = channels / self.groups;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(per_group * pixels)
            .zip(x.par_chunks(per_group * pixels))
            .enumerate()
            .for_each(|(bg, (y, x))| {
                let (mean, rstd) = self.stats(x);
                let first = (bg % self.groups) * per_group;
                for (i, (y, x)) in y.chunks_mut(pixels).zip(x.chunks(pixels)).enumerate() {
                    let (g, b) = (gamma[first + i], beta[first + i]);
                    for (y, &x) in y.iter_mut().zip(x) {
                        let a = g * ((x - mean) * rstd) + b;
                        *y = if self.silu { a * sigmoid(a) } else { a };
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (batch, channels, pixels) = dims(x.shape())?;
        let per_group = channels / self.groups;
        let group_len = per_group * pixels;
        let (xs, dys) = (values(x)?, values(dy)?);
        let (gs, bs) = (values(gamma)?, values(beta)?);
        let mut dx = vec![0f32; xs.len()];
        // Per image and channel: sum da and sum da x^, added over images below.
        let mut partial = vec![(0f64, 0f64); batch * channels];
        dx.par_chunks_mut(group_len)
            .zip(partial.par_chunks_mut(per_group))
            .enumerate()
            .for_each(|(bg, (dx, partial))| {
                let at = bg * group_len;
                let (x, dy) = (&xs[at..][..group_len], &dys[at..][..group_len]);
                let (mean, rstd) = self.stats(x);
                let first = (bg % self.groups) * per_group;
                let (mut sum_d, mut sum_dx) = (0f64, 0f64);
                for i in 0..per_group {
                    let (g, b) = (gs[first + i], bs[first + i]);
                    let (mut s_da, mut s_dax) = (0f64, 0f64);
                    for p in i * pixels..(i + 1) * pixels {
                        let xhat = (x[p] - mean) * rstd;
                        let a = g * xhat + b;
                        let da = match self.silu {
                            true => {
                                let s = sigmoid(a);
                                dy[p] * s * (1.0 + a * (1.0 - s))
                            }
                            false => dy[p],
                        };
                        s_da += da as f64;
                        s_dax += (da * xhat) as f64;
                        let d = g * da;
                        dx[p] = d;
                        sum_d += d as f64;
                        sum_dx += (d * xhat) as f64;
                    }
                    partial[i] = (s_da, s_dax);
                }
                let (mean_d, mean_dx) = (sum_d / group_len as f64, sum_dx / group_len as f64);
                for (p, dx) in dx.iter_mut().enumerate() {
                    let xhat = ((x[p] - mean) * rstd) as f64;
                    *dx = ((*dx as f64 - mean_d - xhat * mean_dx) * rstd as f64) as f32;
                }
            });
        let (mut dbeta, mut dgamma) = (vec![0f64; channels], vec![0f64; channels]);
        for image in partial.chunks(channels) {
            for (c, &(s_da, s_dax)) in image.iter().enumerate() {
                dbeta[c] += s_da;
                dgamma[c] += s_dax;
            }
        }
        let device = x.device();
        let per_channel = |v: Vec<f64>| {
            Tensor::from_vec(
                v.into_iter().map(|v| v as f32).collect::<Vec<_>>(),
                channels,
                device,
            )
        };
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(per_channel(dgamma)?),
            Some(per_channel(dbeta)?),
        ))
    }
}
