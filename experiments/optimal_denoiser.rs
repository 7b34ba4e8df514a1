//! Trained models against the empirical (memorizing) optimal denoiser (the
//! paper's Fig. 4 left): RP of each model's samples with the empirical
//! denoiser's from the same noise vs N (c_rp_vs_empirical), and the denoiser
//! gap to it vs sigma at each N (gap_vs_sigma_*).
//!
//! cargo run --release --bin optimal_denoiser -- experiments/configs/optimal_denoiser.toml

use diffusion_regimes::experiment::{experiment_main, gap_vs_sigma_figures};

fn main() -> std::process::ExitCode {
    experiment_main(
        "experiments/configs/optimal_denoiser.toml",
        &[gap_vs_sigma_figures],
    )
}
