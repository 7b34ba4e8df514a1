//! The default memorization and reproducibility criteria for raw vectors.
//!
//! The paper's tau = 0.6 belongs to SSCD image features; on raw vectors a
//! maximum-cosine criterion depends on N (with enough training points some
//! fall close to any fresh sample). The defaults here are calibrated instead
//! (the calibration is `tests/calibration.rs`; its numbers are in the README):
//! - memorized: the distance-ratio criterion d1/d2 < 1/3 (THEORY §7). It is
//!   scale-free, and for fresh samples of a density that is smooth at the
//!   scale of the training points' spacing in d dimensions it fires with
//!   probability about 3^-d whatever N is; a sample that lands on a training
//!   point has d1 = 0;
//! - reproduced: cosine > 0.8 between the two samples of one initial noise.
//!   Two independent samples of a d-dimensional Gaussian have cosine of order
//!   1/sqrt(d), so they rarely pass; a sampler against itself gives cosine 1.

use crate::metrics::Similarity;

/// Similarity of the reproducibility score.
pub fn rp_similarity() -> Similarity {
    Similarity::Cosine
}

/// Threshold tau of the reproducibility score.
pub fn rp_threshold() -> f64 {
    0.8
}
