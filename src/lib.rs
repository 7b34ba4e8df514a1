//! # diffusion-regimes
//!
//! Does a diffusion model memorize its training set or learn the underlying
//! distribution, and where is the boundary? The pipeline, in ten lines:
//!
//! 1. draw data from a synthetic distribution that knows its exact denoiser ([`data`]),
//! 2. take nested training subsets of size N,
//! 3. build the memorizing denoiser of each subset ([`denoise::EmpiricalDenoiser`]),
//! 4. and the references: the true ([`denoise::Mixture`]) and the fitted Gaussian
//!    ([`denoise::GaussianDenoiser`]) denoisers,
//! 5. train neural denoisers on the same subsets (all implement [`denoise::Denoiser`]),
//! 6. sample every model from the same per-sample noise ([`sample::generate`]),
//! 7. with a deterministic sampler (Euler, Heun, DDIM) or EDM's stochastic one,
//! 8. compare samples with each other and with the training set,
//! 9. and compare the denoisers themselves, per noise level,
//! 10. then read off the memorization and generalization regimes: [`experiment`]
//!     runs steps 2-9 as a resumable, shardable sweep and [`plot`] draws it.
//!
//! Formulas follow THEORY.md; each function that implements one cites its section.

pub mod data;
pub mod denoise;
pub mod device;
pub mod error;
pub mod experiment;
pub mod io;
pub mod linalg;
pub mod metrics;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod sample;
pub mod theory;

pub use error::{Error, Result};
