//! Different architectures trained on the same set and sampled from the same
//! noise (the paper's Fig. 6): MLPs of several depths and widths and a U-Net
//! on image-shaped data, with an RP heatmap per N (rp_heatmap_n*).
//!
//! cargo run --release --bin cross_architecture -- experiments/configs/cross_architecture.toml

use diffusion_regimes::experiment::{experiment_main, rp_heatmaps};

fn main() -> std::process::ExitCode {
    experiment_main(
        "experiments/configs/cross_architecture.toml",
        &[rp_heatmaps],
    )
}
