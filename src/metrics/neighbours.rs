//! Exact nearest-neighbour search of samples against a training set by
//! batched GEMM: ||x - y||^2 = ||x||^2 - 2 x.y + ||y||^2, chunked over the
//! training set so memory stays O(M x chunk).

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// For each sample: the nearest and second-nearest training points and their distances.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    pub nearest: Vec<usize>,
    pub second: Vec<usize>,
    pub nearest_distance: Vec<f64>,
    pub second_distance: Vec<f64>,
}

impl Neighbours {
    /// Fraction of samples with ||x - NN_1|| / ||x - NN_2|| < 1/3, the
    /// distance-ratio memorization criterion (THEORY §7).
    pub fn ratio_memorized_fraction(&self) -> f64 {
        let memorized = self
            .nearest_distance
            .iter()
            .zip(&self.second_distance)
            .filter(|(d1, d2)| **d1 < **d2 / 3.0)
            .count();
        memorized as f64 / self.nearest.len().max(1) as f64
    }
}

/// The two nearest rows of `train` ([N >= 2, n]) to each row of `samples` ([M, n]), in f64.
pub fn nearest_two(samples: &Tensor, train: &Tensor, chunk: usize) -> Result<Neighbours> {
    let (m, n) = samples.dims2()?;
    let (count, n_train) = train.dims2()?;
    if n != n_train {
        return Err(Error::shape(
            "samples vs training set",
            format!("[M, {n_train}]"),
            format!("[{m}, {n}]"),
        ));
    }
    if count < 2 {
        return Err(Error::invalid(
            "training set size",
            count,
            "need at least 2 points for a second neighbour",
        ));
    }
    let x = samples.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let x_sq = x.sqr()?.sum_keepdim(1)?;
    let mut best = vec![[(f64::INFINITY, 0usize); 2]; m];
    for start in (0..count).step_by(chunk.max(1)) {
        let y = train
            .narrow(0, start, chunk.max(1).min(count - start))?
            .to_dtype(DType::F64)?
            .to_device(&Device::Cpu)?;
        let y_sq = y.sqr()?.sum(1)?.unsqueeze(0)?;
        let sq = (x.matmul(&y.t()?)? * -2.0)?
            .broadcast_add(&x_sq)?
            .broadcast_add(&y_sq)?;
        for (b, row) in sq.to_vec2::<f64>()?.iter().enumerate() {
            for (i, &d) in row.iter().enumerate() {
                let candidate = (d.max(0.0), start + i);
                if candidate.0 < best[b][0].0 {
                    best[b] = [candidate, best[b][0]];
                } else if candidate.0 < best[b][1].0 {
                    best[b][1] = candidate;
                }
            }
        }
    }
    Ok(Neighbours {
        nearest: best.iter().map(|b| b[0].1).collect(),
        second: best.iter().map(|b| b[1].1).collect(),
        nearest_distance: best.iter().map(|b| b[0].0.sqrt()).collect(),
        second_distance: best.iter().map(|b| b[1].0.sqrt()).collect(),
    })
}
