//! Data: synthetic distributions that know their exact denoiser, and array files.

pub mod npy;
mod synthetic;

pub use synthetic::{load_distribution, Spectrum, Synthetic, SyntheticSpec};
