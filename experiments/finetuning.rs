//! The `finetuning` experiment (`diffusion_regimes::experiments::Finetuning`, also
//! `regimes run finetuning`):
//!
//! cargo run --release --bin finetuning -- experiments/configs/finetuning.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("finetuning")
}
