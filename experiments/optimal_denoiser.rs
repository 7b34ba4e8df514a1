//! The `optimal_denoiser` experiment (`diffusion_regimes::experiments::OptimalDenoiser`, also
//! `regimes run optimal_denoiser`):
//!
//! cargo run --release --bin optimal_denoiser -- experiments/configs/optimal_denoiser.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("optimal_denoiser")
}
