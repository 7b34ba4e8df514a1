//! `diffusion_regimes._native`: the crate's library behind a thin PyO3
//! layer. Arrays come in and go out as numpy arrays in their own dtype and
//! shape; errors become Python exceptions; long work runs without the GIL
//! and stops on Ctrl-C. The Python package (`diffusion_regimes/`) wraps
//! these functions with keyword defaults and docstrings.

use pyo3::prelude::*;

mod arrays;
mod callable;
mod data;
mod denoisers;
mod errors;
mod experiments;
mod interrupt;
mod inverse;
mod sampling;
mod scores;
mod timing;
mod training;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<denoisers::Denoiser>()?;
    m.add_class::<data::Distribution>()?;
    m.add_class::<training::Run>()?;
    m.add_function(wrap_pyfunction!(denoisers::denoiser, m)?)?;
    m.add_function(wrap_pyfunction!(denoisers::denoiser_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::initial_noise, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::sample, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::samplers, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::frameworks, m)?)?;
    m.add_function(wrap_pyfunction!(scores::reproducibility, m)?)?;
    m.add_function(wrap_pyfunction!(scores::generalization, m)?)?;
    m.add_function(wrap_pyfunction!(scores::memorization_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(scores::nearest, m)?)?;
    m.add_function(wrap_pyfunction!(scores::denoiser_gap, m)?)?;
    m.add_function(wrap_pyfunction!(scores::jacobian_rank, m)?)?;
    m.add_function(wrap_pyfunction!(data::load_images, m)?)?;
    m.add_function(wrap_pyfunction!(data::synthetic, m)?)?;
    m.add_function(wrap_pyfunction!(data::load_distribution, m)?)?;
    m.add_function(wrap_pyfunction!(data::nested_subset, m)?)?;
    m.add_function(wrap_pyfunction!(data::disjoint_subset, m)?)?;
    m.add_function(wrap_pyfunction!(inverse::solve, m)?)?;
    m.add_function(wrap_pyfunction!(inverse::calibrate_patches, m)?)?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_function(wrap_pyfunction!(training::load_run, m)?)?;
    m.add_function(wrap_pyfunction!(experiments::experiments, m)?)?;
    m.add_function(wrap_pyfunction!(experiments::run_experiment, m)?)?;
    m.add_function(wrap_pyfunction!(timing::time_denoise, m)?)?;
    m.add_function(wrap_pyfunction!(timing::time_sample, m)?)?;
    Ok(())
}
