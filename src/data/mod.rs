//! Data: synthetic distributions that know their exact denoiser, array files,
//! and nested training subsets.

pub mod npy;
pub mod npz;
mod synthetic;
mod training_set;

pub use synthetic::{load_distribution, Spectrum, Synthetic, SyntheticSpec, SPEC_FILE};
pub use training_set::{load_examples, nested_subset, permutation, sigma_data, training_set};
