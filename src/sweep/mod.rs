//! Sweeps over the training-set size N: a grid of independent cells (one
//! model at one N), run resumably and shardably, collected into results and
//! drawn as the regime figures.
//!
//! ```no_run
//! use diffusion_regimes::sweep::{regime_figures, Results, Shard, Sweep, SweepConfig};
//! let config = SweepConfig::parse(diffusion_regimes::sweep::QUICKSTART, "quickstart".as_ref()).unwrap();
//! let sweep = Sweep::prepare(config, "runs/quickstart".as_ref()).unwrap();
//! sweep.run(Shard::ALL, 2).unwrap();
//! let results = Results::collect(&sweep.root).unwrap();
//! regime_figures(&results, &sweep.root).unwrap();
//! ```

mod budget;
mod cell;
mod config;
pub mod criteria;
mod engine;
mod failed;
mod figures;
mod grids;
pub mod lock;
mod options;
mod results;
mod run;
mod settings;
mod training;

pub use budget::{budget_file, budget_samples, BudgetCheck, BudgetVerdict, CONVERGED_MOVE};
pub use cell::{
    check_finite, measure, run_cells, Cell, CellResult, Estimate, Measured, Model, SAMPLES_FILE,
};
pub use config::{load_toml, DataSource, ModelSpec, Split, SweepConfig};
pub use engine::{Shard, Sweep};
pub use failed::{FailedCell, FAILED_FILE};
pub(crate) use figures::regime_shades;
pub use figures::{gap_vs_sigma_figures, regime_figures, rp_heatmaps};
pub use grids::{nearest_images, sample_grids, GRID_COLUMNS, GRID_ZOOM, NEAREST_LABEL};
pub use options::RunOptions;
pub use results::{Crossing, Pair, Regimes, Results, REGIME_MARGIN};
pub use run::{collect, finished, run_sweep, write_sweep, FigureFn, SweepReport};
pub use settings::{
    MemorizerSampler, MetricSettings, SamplerChoice, SamplingSettings, TrainSettings,
};
pub use training::{train_config, train_model};

/// The quickstart preset (`experiments/configs/quickstart.toml`), built in
/// so `regimes quickstart` needs no file.
pub const QUICKSTART: &str = include_str!("../../experiments/configs/quickstart.toml");
