//! Trained models against the empirical (memorizing) optimal denoiser (the
//! paper's Fig. 4 left): RP of each model's samples with the empirical
//! denoiser's from the same noise vs N, and the denoiser gap to it vs sigma
//! at each N.
//!
//! cargo run --release --bin optimal_denoiser -- experiments/configs/optimal_denoiser.toml

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use diffusion_regimes::experiment::{
    exit_code, gap_vs_sigma_figures, run_sweep, SweepArgs, SweepConfig,
};

#[derive(Parser)]
struct Cli {
    #[arg(default_value = "experiments/configs/optimal_denoiser.toml")]
    config: PathBuf,
    #[command(flatten)]
    sweep: SweepArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit_code((|| {
        let config = SweepConfig::load(&cli.config)?;
        let figures = cli
            .sweep
            .figures
            .clone()
            .unwrap_or_else(|| cli.sweep.out(&config));
        if let Some(results) = run_sweep(config, &cli.sweep)? {
            gap_vs_sigma_figures(&results, &figures)?;
        }
        Ok(())
    })())
}
