//! The `regimes_sweep` experiment (`diffusion_regimes::experiments::RegimesSweep`, also
//! `regimes run regimes_sweep`):
//!
//! cargo run --release --bin regimes_sweep -- experiments/configs/regimes_sweep.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("regimes_sweep")
}
