//! The `training_time` experiment (`diffusion_regimes::experiments::TrainingTime`, also
//! `regimes run training_time`):
//!
//! cargo run --release --bin training_time -- experiments/configs/training_time.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::cli::experiment_main("training_time")
}
