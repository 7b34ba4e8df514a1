//! A dense layer y = x W^T + b with its backward (dx = dy W, dW = dy^T x,
//! db = column sums of dy): three gemm calls and a bias pass instead of
//! candle's matmul, broadcast add, transposes and reductions. Each product
//! has the bits of the one gemm call candle's matmul makes (the forward
//! splits its rows, the backward runs its two products side by side; see
//! [`Split`]), so the committed MLP results stand.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffusion_regimes::nn::ops::dense;
//! let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
//! let w = Tensor::new(&[[1f32, 0.0], [1.0, 1.0], [0.0, -1.0]], &Device::Cpu).unwrap();
//! let b = Tensor::new(&[0f32, 0.5, 1.0], &Device::Cpu).unwrap();
//! let y = dense(&x, &w, Some(&b)).unwrap();
//! assert_eq!(y.to_vec2::<f32>().unwrap(), [[1.0, 3.5, -1.0]]);
//! ```

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{matmul, Split};
use super::{f32_data, runs_here, sum_rows, values, with_bias, ELEMENTS_PER_TASK, MACS_PER_TASK};
use crate::Result;

/// `x` \[B, in\] times `weight` \[out, in\] transposed, plus `bias` \[out\]. f32 on
/// the CPU runs this module's kernel; other dtypes and devices candle's ops.
pub fn dense(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if runs_here(x) && x.rank() == 2 {
        return with_bias(x, weight, bias, Dense);
    }
    let y = x.broadcast_matmul(&weight.t()?)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// candle-nn's `Linear` layer (which holds and initialises the weights) run by [`dense`].
pub fn linear_forward(layer: &candle_nn::Linear, x: &Tensor) -> Result<Tensor> {
    dense(x, layer.weight(), layer.bias())
}

struct Dense;

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "dense"
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
        let (x, w, b) = (
            f32_data(s1, l1, "dense")?,
            f32_data(s2, l2, "dense")?,
            f32_data(s3, l3, "dense")?,
        );
        let (batch, inputs) = l1.shape().dims2()?;
        let (outputs, w_inputs) = l2.shape().dims2()?;
        if w_inputs != inputs || b.len() != outputs {
            candle_core::bail!(
                "dense: input {:?}, weight {:?}, bias {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let mut y = vec![0f32; batch * outputs];
        matmul(
            (batch, outputs, inputs),
            &mut y,
            (x, inputs, 1),
            (w, 1, inputs),
            false,
            Split::Rows,
        );
        let rows_per_task = ELEMENTS_PER_TASK.div_ceil(outputs.max(1));
        y.par_chunks_mut(outputs)
            .with_min_len(rows_per_task)
            .for_each(|row| {
                row.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
            });
        Ok((CpuStorage::F32(y), Shape::from((batch, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let like = |values, t: &Tensor| Tensor::from_vec(values, t.shape(), t.device());
        let (batch, inputs) = x.dims2()?;
        let outputs = w.dim(0)?;
        let (xs, dys) = (values(x)?, values(dy)?);
        let mut dw = vec![0f32; outputs * inputs];
        let weight_grad = |dw: &mut [f32], split| {
            let (lhs, rhs) = ((&dys[..], 1, outputs), (&xs[..], inputs, 1));
            matmul((outputs, inputs, batch), dw, lhs, rhs, false, split);
            sum_rows(&dys, outputs)
        };
        // A network's input (noisy data, noise embedding) needs no gradient:
        // then the weights' product has both threads.
        if !x.track_op() {
            let db = weight_grad(&mut dw, Split::Rows);
            return Ok((None, Some(like(dw, w)?), Some(like(db, b)?)));
        }
        let ws = values(w)?;
        let mut dx = vec![0f32; batch * inputs];
        // The two products are independent: one thread each, when they are
        // worth it.
        let mut input_grad = || {
            let (lhs, rhs) = ((&dys[..], outputs, 1), (&ws[..], inputs, 1));
            matmul(
                (batch, inputs, outputs),
                &mut dx,
                lhs,
                rhs,
                false,
                Split::Single,
            )
        };
        let db = match batch * inputs * outputs < MACS_PER_TASK {
            true => {
                input_grad();
                weight_grad(&mut dw, Split::Single)
            }
            false => rayon::join(input_grad, || weight_grad(&mut dw, Split::Single)).1,
        };
        Ok((Some(like(dx, x)?), Some(like(dw, w)?), Some(like(db, b)?)))
    }
}
