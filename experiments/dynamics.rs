//! The `dynamics` experiment (`diffusion_regimes::experiments::Dynamics`, also
//! `regimes run dynamics`):
//!
//! cargo run --release --bin dynamics -- experiments/configs/dynamics.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("dynamics")
}
