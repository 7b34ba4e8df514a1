//! The general regime sweep: every N x architecture x seed of a TOML config,
//! resumable and shardable, then results.json/csv and the regime figures.
//!
//! cargo run --release --bin regimes_sweep -- experiments/configs/regimes_sweep.toml

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use diffusion_regimes::experiment::{exit_code, run_sweep, SweepArgs, SweepConfig};

#[derive(Parser)]
struct Cli {
    #[arg(default_value = "experiments/configs/regimes_sweep.toml")]
    config: PathBuf,
    #[command(flatten)]
    sweep: SweepArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit_code(SweepConfig::load(&cli.config).and_then(|c| run_sweep(c, &cli.sweep).map(|_| ())))
}
