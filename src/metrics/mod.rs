//! Comparison metrics (THEORY §7): similarities, exact nearest neighbours,
//! reproducibility / generalization / memorization scores with bootstrap
//! intervals, denoiser gaps, Jacobian spectra, and the curves read off them
//! (crossings, fits, quantiles).

mod bootstrap;
mod curves;
mod gap;
mod neighbours;
mod scores;
mod similarity;
mod spectrum;

pub use bootstrap::Bootstrap;
pub use curves::{crossing, least_squares, quantile, sign_change};
pub use gap::denoiser_gap;
pub use neighbours::{nearest_two, Neighbours, DEFAULT_CHUNK};
pub use scores::{class_agreement, generalization, ratio_memorization, reproducibility, Score};
pub use similarity::{r_squared, Similarity};
pub use spectrum::{effective_rank, singular_values};
