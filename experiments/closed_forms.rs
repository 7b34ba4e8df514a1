//! The `closed_forms` experiment (`diffusion_regimes::experiments::ClosedForms`,
//! also `regimes run closed_forms`):
//!
//! cargo run --release --bin closed_forms -- experiments/configs/closed_forms.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("closed_forms")
}
