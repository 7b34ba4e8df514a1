//! The `frameworks` experiment (`diffusion_regimes::experiments::Frameworks`,
//! also `regimes run frameworks`):
//!
//! cargo run --release --bin frameworks -- experiments/configs/frameworks.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("frameworks")
}
