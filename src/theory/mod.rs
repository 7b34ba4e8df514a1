//! Regime theory (THEORY §8): analytic predictions of where the regimes fall
//! ([`predict`]) and their numerical measurement with the empirical denoiser
//! ([`clone_test`], [`last_switch_levels`]).

mod clone;
mod predict;

pub use clone::{clone_test, last_switch_levels, CloneCurve};
pub use predict::{
    collapse_sigma_entropy, collapse_sigma_isotropic, excess_entropy_per_dim, molrg_ratios,
    predict, speciation_sigma, top_eigenvalue, MolrgRatio, Prediction,
};
