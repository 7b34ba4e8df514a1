//! The `collapse` experiment (`diffusion_regimes::experiments::Collapse`, also
//! `regimes run collapse`):
//!
//! cargo run --release --bin collapse -- experiments/configs/collapse.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("collapse")
}
