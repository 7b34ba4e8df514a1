//! The `molrg_threshold` experiment (`diffusion_regimes::experiments::MolrgThreshold`, also
//! `regimes run molrg_threshold`):
//!
//! cargo run --release --bin molrg_threshold -- experiments/configs/molrg_threshold.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("molrg_threshold")
}
