//! The `cross_architecture` experiment (`diffusion_regimes::experiments::CrossArchitecture`, also
//! `regimes run cross_architecture`):
//!
//! cargo run --release --bin cross_architecture -- experiments/configs/cross_architecture.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("cross_architecture")
}
