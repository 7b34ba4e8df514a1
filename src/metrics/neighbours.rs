//! Exact nearest-neighbour search of samples against a training set by
//! batched GEMM: ||x - y||^2 = ||x||^2 - 2 x.y + ||y||^2, in blocks of
//! samples and chunks of training points so memory stays
//! O(block x chunk) whatever M and N are.
//!
//! The search runs in f32 when both inputs are f32 (twice the GEMM
//! throughput of f64), then the two winners' distances are recomputed
//! directly in f64, so the reported distances carry no cancellation error.
//! Only a near-tie within f32 rounding (about 1e-7 ||x||^2) could change
//! which points win.

use candle_core::{DType, Device, Tensor, D};
use rayon::prelude::*;

use crate::nn::ops::{matmul, values, Split};
use crate::{Error, Result};

/// Training points per GEMM chunk by default.
pub const DEFAULT_CHUNK: usize = 4096;
/// Samples per block: a block x chunk f32 distance matrix is 16 MB at the defaults.
const SAMPLE_BLOCK: usize = 1024;
/// Samples per task of the f32 search, at least: its product buffer is 4 MB
/// at the default chunk.
const SEARCH_ROWS: usize = 256;
/// Samples per task of the f32 search, at most (a 128 MiB product buffer
/// per thread at the default chunk).
const SEARCH_ROWS_MAX: usize = 8192;

/// Samples per task of the f32 search for M samples: one task per thread
/// where M allows, since every task packs the whole training set again for
/// its GEMMs, and gemm runs faster on taller blocks (at M = 10,000 on 2
/// threads: 0.64 of a bare GEMM with 256 rows, 0.78 with 1250, 0.93 with
/// 5000; BENCHMARKS.md). Where a chunk holds over 64 training points gemm
/// blocks a dot product by its length alone (`Split::Rows`), so the rows
/// per task change no bits; the reported distances are recomputed in f64
/// anyway.
fn search_rows(m: usize) -> usize {
    (m.div_ceil(rayon::current_num_threads())).clamp(SEARCH_ROWS, SEARCH_ROWS_MAX)
}

/// For each sample: the nearest and second-nearest training points and their distances.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    pub nearest: Vec<usize>,
    pub second: Vec<usize>,
    pub nearest_distance: Vec<f64>,
    pub second_distance: Vec<f64>,
}

impl Neighbours {
    /// Whether sample j is memorized by the distance-ratio criterion
    /// ||x - NN_1|| / ||x - NN_2|| < 1/3 (THEORY §7).
    pub fn ratio_memorized(&self) -> Vec<bool> {
        self.nearest_distance
            .iter()
            .zip(&self.second_distance)
            .map(|(d1, d2)| *d1 < *d2 / 3.0)
            .collect()
    }

    /// Fraction of samples memorized by the distance-ratio criterion.
    pub fn ratio_memorized_fraction(&self) -> f64 {
        let flags = self.ratio_memorized();
        flags.iter().filter(|&&m| m).count() as f64 / flags.len().max(1) as f64
    }
}

/// The two nearest rows of `train` ([N >= 2, n]) to each row of `samples`
/// ([M, n]), searching `chunk` training points per GEMM.
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
    let dtype = match (samples.dtype(), train.dtype()) {
        (DType::F32, DType::F32) => DType::F32,
        _ => DType::F64,
    };
    let chunk = chunk.max(1);
    let on_cpu = samples.device().is_cpu() && train.device().is_cpu();
    if dtype == DType::F32 && on_cpu {
        let best = search_f32(samples, train, chunk)?;
        return exact_distances(samples, train, &best);
    }
    let chunks: Vec<(usize, Tensor, Vec<f64>)> = (0..count)
        .step_by(chunk)
        .map(|start| {
            let y = train
                .narrow(0, start, chunk.min(count - start))?
                .to_dtype(dtype)?;
            let y_sq = y.to_dtype(DType::F64)?.sqr()?.sum(1)?.to_vec1::<f64>()?;
            Ok((start, y.t()?, y_sq))
        })
        .collect::<Result<_>>()?;
    let mut best = vec![[(f64::INFINITY, 0usize); 2]; m];
    for first in (0..m).step_by(SAMPLE_BLOCK) {
        let x = samples
            .narrow(0, first, SAMPLE_BLOCK.min(m - first))?
            .to_dtype(dtype)?;
        let x_sq = x.to_dtype(DType::F64)?.sqr()?.sum(1)?.to_vec1::<f64>()?;
        let best = &mut best[first..first + x_sq.len()];
        for (start, y_t, y_sq) in &chunks {
            // Only the GEMM runs as a tensor op; the squared distances are formed
            // inside the scan, saving four passes over the block x chunk matrix.
            let dot = x.matmul(y_t)?.flatten_all()?;
            match dtype {
                DType::F32 => scan(&dot.to_vec1::<f32>()?, &x_sq, y_sq, *start, best),
                _ => scan(&dot.to_vec1::<f64>()?, &x_sq, y_sq, *start, best),
            }
        }
    }
    exact_distances(samples, train, &best)
}

/// The f32 search on the CPU without tensor ops: the samples are split into
/// one row block per task, and each task computes its block's dot products
/// with one training chunk at a time (gemm called directly, into a buffer
/// it reuses) and scans them at once. No product is allocated or copied,
/// and every core both multiplies and scans.
fn search_f32(samples: &Tensor, train: &Tensor, chunk: usize) -> Result<Vec<[(f64, usize); 2]>> {
    let (m, n) = samples.dims2()?;
    let count = train.dim(0)?;
    let (x, y) = (values(samples)?, values(train)?);
    let squares = |rows: &[f32]| -> Vec<f64> {
        rows.chunks(n)
            .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
            .collect()
    };
    let (x_sq, y_sq) = (squares(&x), squares(&y));
    let rows = search_rows(m);
    let mut best = vec![[(f64::INFINITY, 0usize); 2]; m];
    best.par_chunks_mut(rows)
        .enumerate()
        .for_each(|(block, best)| {
            let first = block * rows;
            let lhs = &x[first * n..(first + best.len()) * n];
            let mut dot = vec![0f32; best.len() * chunk.min(count)];
            for start in (0..count).step_by(chunk) {
                let columns = chunk.min(count - start);
                let dot = &mut dot[..best.len() * columns];
                // dot[r, j] = x[first + r] . y[start + j]: y's rows read as columns.
                let rhs = &y[start * n..(start + columns) * n];
                matmul(
                    (best.len(), columns, n),
                    dot,
                    (lhs, n, 1),
                    (rhs, 1, n),
                    false,
                    Split::Single,
                );
                let x_sq = &x_sq[first..first + best.len()];
                scan(dot, x_sq, &y_sq[start..start + columns], start, best);
            }
        });
    Ok(best)
}

/// Updates each sample's two best candidates with one chunk's squared
/// distances ||x||^2 - 2 x.y + ||y||^2, from the dot products `dot` [rows, chunk].
fn scan<T: Copy + Into<f64>>(
    dot: &[T],
    x_sq: &[f64],
    y_sq: &[f64],
    start: usize,
    best: &mut [[(f64, usize); 2]],
) {
    for ((row, &xx), best) in dot.chunks(y_sq.len()).zip(x_sq).zip(best) {
        for (i, (&d, &yy)) in row.iter().zip(y_sq).enumerate() {
            let d = xx + yy - 2.0 * d.into();
            if d < best[1].0 {
                let candidate = (d, start + i);
                *best = match d < best[0].0 {
                    true => [candidate, best[0]],
                    false => [best[0], candidate],
                };
            }
        }
    }
}

/// Recomputes the winners' distances directly in f64 and orders each pair by them.
fn exact_distances(
    samples: &Tensor,
    train: &Tensor,
    best: &[[(f64, usize); 2]],
) -> Result<Neighbours> {
    let x = samples.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let distance_to = |which: usize| -> Result<Vec<f64>> {
        let rows: Vec<u32> = best.iter().map(|b| b[which].1 as u32).collect();
        let y = train.index_select(&Tensor::new(rows.as_slice(), train.device())?, 0)?;
        let y = y.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
        Ok((&x - y)?.sqr()?.sum(D::Minus1)?.sqrt()?.to_vec1::<f64>()?)
    };
    let (d1, d2) = (distance_to(0)?, distance_to(1)?);
    let mut nn = Neighbours {
        nearest: Vec::new(),
        second: Vec::new(),
        nearest_distance: Vec::new(),
        second_distance: Vec::new(),
    };
    for (j, b) in best.iter().enumerate() {
        let (first, second) = match d2[j] < d1[j] {
            true => ((b[1].1, d2[j]), (b[0].1, d1[j])),
            false => ((b[0].1, d1[j]), (b[1].1, d2[j])),
        };
        nn.nearest.push(first.0);
        nn.nearest_distance.push(first.1);
        nn.second.push(second.0);
        nn.second_distance.push(second.1);
    }
    Ok(nn)
}
