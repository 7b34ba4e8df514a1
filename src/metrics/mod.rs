//! Comparison metrics (THEORY §7): similarities, exact nearest neighbours,
//! reproducibility / generalization / memorization scores with bootstrap
//! intervals, denoiser gaps, and Jacobian spectra.

mod bootstrap;
mod gap;
mod neighbours;
mod scores;
mod similarity;
mod spectrum;

pub use bootstrap::Bootstrap;
pub use gap::denoiser_gap;
pub use neighbours::{nearest_two, Neighbours, DEFAULT_CHUNK};
pub use scores::{class_agreement, generalization, ratio_memorization, reproducibility, Score};
pub use similarity::{r_squared, Similarity};
pub use spectrum::{effective_rank, singular_values};
