//! SiLU, y = x / (1 + exp(-x)), and its gradient dy (s (1 - y) + y) with
//! s = 1 / (exp(-x) + 1), each one parallel pass. candle runs the forward
//! on one thread and the backward as nine allocating tensor ops; the
//! expressions here are candle's own, so the bits are the same. When the
//! graph will differentiate it, the forward keeps its denominators
//! 1 + exp(-x) (the same floats as exp(-x) + 1) for the backward, which then
//! needs no exp: the exps were a third of the op's time.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{f32_data, runs_here, values, ELEMENTS_PER_TASK};
use crate::Result;

/// silu(x), elementwise.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(match runs_here(x) {
        true => x.contiguous()?.apply_op1(Silu {
            denominators: x.track_op().then(OnceLock::new),
        })?,
        false => x.silu()?,
    })
}

struct Silu {
    /// 1 + exp(-x), kept by the forward when there will be a backward.
    denominators: Option<OnceLock<Vec<f32>>>,
}

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "silu")?;
        let mut y = vec![0f32; x.len()];
        match &self.denominators {
            None => y
                .par_chunks_mut(ELEMENTS_PER_TASK)
                .zip(x.par_chunks(ELEMENTS_PER_TASK))
                .for_each(|(y, x)| {
                    y.iter_mut()
                        .zip(x)
                        .for_each(|(y, &v)| *y = v / (1.0 + (-v).exp()));
                }),
            Some(kept) => {
                let mut d = vec![0f32; x.len()];
                (
                    y.par_chunks_mut(ELEMENTS_PER_TASK),
                    d.par_chunks_mut(ELEMENTS_PER_TASK),
                )
                    .into_par_iter()
                    .zip(x.par_chunks(ELEMENTS_PER_TASK))
                    .for_each(|((y, d), x)| {
                        for ((y, d), &v) in y.iter_mut().zip(d.iter_mut()).zip(x) {
                            *d = 1.0 + (-v).exp();
                            *y = v / *d;
                        }
                    });
                let _ = kept.set(d);
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (xs, ys, dys) = (values(x)?, values(y)?, values(dy)?);
        let kept = self.denominators.as_ref().and_then(OnceLock::get);
        let mut dx = vec![0f32; xs.len()];
        // Zipped slices and the denominators' source chosen outside the
        // loop, so the compiler can vectorize it (the same operations on
        // each element, so the same bits).
        dx.par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(xs.par_chunks(ELEMENTS_PER_TASK))
            .zip(ys.par_chunks(ELEMENTS_PER_TASK))
            .zip(dys.par_chunks(ELEMENTS_PER_TASK))
            .enumerate()
            .for_each(|(c, (((dx, xs), ys), dys))| {
                let gradient = |dx: &mut f32, d: f32, node: f32, dy: f32| {
                    *dx = dy * (1.0 / d * (1.0 - node) + node);
                };
                let rows = dx.iter_mut().zip(ys).zip(dys);
                match kept {
                    Some(kept) => {
                        let at = c * ELEMENTS_PER_TASK;
                        let kept = &kept[at..at + xs.len()];
                        for (((dx, &node), &dy), &d) in rows.zip(kept) {
                            gradient(dx, d, node, dy);
                        }
                    }
                    None => {
                        for (((dx, &node), &dy), &v) in rows.zip(xs) {
                            gradient(dx, (-v).exp() + 1.0, node, dy);
                        }
                    }
                }
            });
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}
