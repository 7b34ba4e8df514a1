//! The general regime sweep: every N x architecture x seed of a TOML config,
//! resumable and shardable, then results.json/csv and the regime figures.
//!
//! cargo run --release --bin regimes_sweep -- experiments/configs/regimes_sweep.toml

fn main() -> std::process::ExitCode {
    diffusion_regimes::experiment::experiment_main("experiments/configs/regimes_sweep.toml", &[])
}
