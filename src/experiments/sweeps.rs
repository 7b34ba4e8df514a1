//! The sweep-shaped experiments: a grid of N x models, trained, sampled and
//! scored (`sweep::Sweep`), drawn as the regime figures plus each
//! experiment's own.

use std::path::{Path, PathBuf};

use super::{Experiment, RunOptions};
use crate::sweep::{
    gap_vs_sigma_figures, rp_heatmaps, run_sweep, write_sweep, FigureFn, SweepConfig, SweepReport,
};
use crate::Result;

/// Declares a sweep experiment: its name, its line of help, its extra figures.
macro_rules! sweep_experiment {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $about:literal, $extra:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl Experiment for $ty {
            const NAME: &'static str = $name;
            const ABOUT: &'static str = $about;
            type Config = SweepConfig;
            type Report = SweepReport;

            fn load(path: &Path, options: &RunOptions) -> Result<SweepConfig> {
                options.with_data(SweepConfig::load(path)?, path)
            }

            fn run(config: &SweepConfig, options: &RunOptions) -> Result<Option<SweepReport>> {
                run_sweep(&options.prepare(config.clone())?, options)
            }

            fn figure_dir(config: &SweepConfig, options: &RunOptions) -> PathBuf {
                options.sweep_root(config)
            }

            fn figures(report: &SweepReport, dir: &Path) -> Result<()> {
                const EXTRA: &[FigureFn] = $extra;
                write_sweep(report, dir, EXTRA)
            }
        }
    };
}

sweep_experiment!(
    /// The general regime sweep: every N x architecture x seed of a config.
    RegimesSweep,
    "regimes_sweep",
    "the general regime sweep: figures (a)-(d) over N x architecture x seed",
    &[]
);

sweep_experiment!(
    /// Trained models against the empirical (memorizing) optimal denoiser
    /// (the paper's Fig. 4 left): RP against it vs N, and the gap to it vs
    /// sigma at each N.
    OptimalDenoiser,
    "optimal_denoiser",
    "trained models vs the empirical denoiser: RP vs N and the gap vs sigma per N",
    &[gap_vs_sigma_figures]
);

sweep_experiment!(
    /// Different architectures trained on the same sets and sampled from the
    /// same noise (the paper's Fig. 6): an RP heatmap per N.
    CrossArchitecture,
    "cross_architecture",
    "MLPs and a U-Net on the same sets from the same noise: an RP heatmap per N",
    &[rp_heatmaps]
);
