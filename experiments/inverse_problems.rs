//! The `inverse_problems` experiment (`diffusion_regimes::experiments::InverseProblems`,
//! also `regimes run inverse_problems`):
//!
//! cargo run --release --bin inverse_problems -- experiments/configs/inverse_problems.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("inverse_problems")
}
