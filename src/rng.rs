//! Seeded random streams.
//!
//! Every draw comes from a ChaCha20 stream keyed by `(seed, purpose)` and
//! selected by an index, so that what sample `j` gets depends only on
//! `(seed, j)`: never on batch size, device or order of generation
//! (THEORY §2 "Start").

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Result;

/// What a stream is used for; different purposes never share draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Initial noise and sampler noise of one generated sample.
    Sample = 1,
    /// One row of a synthetic data set.
    Data = 2,
    /// Parameters of a synthetic distribution (means, bases).
    Params = 3,
    /// Initial weights of a neural network, one stream per named tensor.
    Weights = 4,
    /// The permutation that orders a data set into nested subsets.
    Subset = 5,
    /// One training step's batch: example indices, noise levels and noise.
    Batch = 6,
    /// One epoch's permutation of the training set.
    Epoch = 7,
    /// Bootstrap resampling of a score's per-sample values.
    Bootstrap = 8,
    /// The independent noise of cloned trajectories (theory::clone_test).
    Clone = 9,
    /// The matrix of a seeded random-projection operator (inverse::Operator).
    Operator = 10,
    /// The measurement noise of one measured sample (inverse::Operator::measure).
    Measurement = 11,
    /// Which labels of a training step's batch are dropped (class-conditional training).
    LabelDropout = 12,
    /// The fixed draws of a run's training and held-out losses.
    Evaluation = 13,
}

/// The stream for `(seed, purpose)`, at index `index`.
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(purpose as u64).to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

/// `n` standard-normal draws from `rng`.
pub fn standard_normal(rng: &mut ChaCha20Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// A `[rows.len(), n]` tensor whose row `k` holds `n` draws from stream
/// `rows[k]` of `rngs`; drawing advances each stream.
pub fn normal_rows(
    rngs: &mut [ChaCha20Rng],
    n: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let values: Vec<f64> = rngs
        .iter_mut()
        .flat_map(|rng| standard_normal(rng, n))
        .collect();
    Ok(Tensor::from_vec(values, (rngs.len(), n), device)?.to_dtype(dtype)?)
}

/// One `Sample` stream per seed index, e.g. for the rows of a sampling batch.
pub fn sample_streams(seed: u64, indices: &[u64]) -> Vec<ChaCha20Rng> {
    indices
        .iter()
        .map(|&j| stream(seed, Purpose::Sample, j))
        .collect()
}
