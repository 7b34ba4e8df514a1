//! The `conditional` experiment (`diffusion_regimes::experiments::Conditional`,
//! also `regimes run conditional`):
//!
//! cargo run --release --bin conditional -- experiments/configs/conditional.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("conditional")
}
