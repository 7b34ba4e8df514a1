//! The `boundaries` experiment (`diffusion_regimes::experiments::Boundaries`, also
//! `regimes run boundaries`):
//!
//! cargo run --release --bin boundaries -- experiments/configs/boundaries.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("boundaries")
}
