//! A dense layer y = x W^T + b with its backward (dx = dy W, dW = dy^T x,
//! db = column sums of dy): three gemm calls and a bias pass instead of
//! candle's matmul, broadcast add, transposes and reductions. Each product
//! is the one gemm call candle's matmul makes ([`Split::Whole`]), so the bits
//! are candle's and the committed MLP results stand.
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
use super::{f32_data, runs_here, sum_rows, values, with_bias};
use crate::Result;

/// `x` [B, in] times `weight` [out, in] transposed, plus `bias` [out]. f32 on
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
            Split::Whole,
        );
        y.par_chunks_mut(outputs).for_each(|row| {
            row.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
        });
        Ok((CpuStorage::F32(y), Shape::from((batch, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (batch, inputs) = x.dims2()?;
        let outputs = w.dim(0)?;
        let mut dx = vec![0f32; batch * inputs];
        let mut dw = vec![0f32; outputs * inputs];
        let (xs, ws, dys) = (values(x)?, values(w)?, values(dy)?);
        // The two products are independent: one thread each.
        let input_grad = || {
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
        let weight_grad = || {
            let (lhs, rhs) = ((&dys[..], 1, outputs), (&xs[..], inputs, 1));
            matmul(
                (outputs, inputs, batch),
                &mut dw,
                lhs,
                rhs,
                false,
                Split::Single,
            );
            sum_rows(&dys, outputs)
        };
        let db = rayon::join(input_grad, weight_grad).1;
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (batch, inputs), device)?),
            Some(Tensor::from_vec(dw, (outputs, inputs), device)?),
            Some(Tensor::from_vec(db, outputs, device)?),
        ))
    }
}
