//! The one way every sweep-shaped experiment runs: prepare, run this shard's
//! cells, and, when the grid is complete, collect, write results and figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::results::Results;
use super::sweep::{Shard, Sweep};
use super::SweepConfig;
use crate::io::write_atomic;
use crate::plot::{save_figure, Figure};
use crate::Result;

/// Command-line options shared by `regimes quickstart` and the experiment binaries.
#[derive(Args, Clone, Debug)]
pub struct SweepArgs {
    /// Output folder: cells/ (one run folder per model and N), sweep.toml.
    /// Default: runs/<config name>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where results.json, results.csv and the figures go (default: --out).
    #[arg(long)]
    pub figures: Option<PathBuf>,
    /// Run only the cells of shard i of n (cell k belongs to shard k mod n),
    /// e.g. `--shard $SLURM_ARRAY_TASK_ID/8`; then `regimes collect OUT`.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// Cells trained at once, each on one thread (default: the core count).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where networks train and run: cpu, or cuda (a binary built with
    /// `--features cuda`). Noise, references and scores stay on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl SweepArgs {
    /// --jobs, or the core count.
    pub fn jobs(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn out(&self, config: &SweepConfig) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| Path::new("runs").join(&config.name))
    }

    /// The sweep of `config` in [`Self::out`], its networks on `--device`.
    pub fn prepare(&self, config: SweepConfig) -> Result<Sweep> {
        let device = crate::device::device(&self.device)?;
        let mut sweep = Sweep::prepare(config.clone(), &self.out(&config))?;
        sweep.device = device;
        Ok(sweep)
    }
}

/// Extra figures an experiment draws from a finished sweep, beside the regime figures.
pub type FigureFn = fn(&Results, &Path) -> Result<Vec<PathBuf>>;

/// The command line of a sweep-shaped experiment binary.
#[derive(clap::Parser, Debug)]
pub struct ExperimentCli {
    /// The TOML config (default: the experiment's own in experiments/configs/).
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub sweep: SweepArgs,
}

/// The command line of an experiment that can read its examples from a file:
/// [`ExperimentCli`] plus `--data` ([`experiment_main`], `training_time`).
#[derive(clap::Parser, Debug)]
pub struct DataExperimentCli {
    #[command(flatten)]
    pub experiment: ExperimentCli,
    /// Read the examples from this file instead of the config's `data.file`
    /// (same format), e.g. your own MNIST or CIFAR-10 download.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl ExperimentCli {
    /// The config path given, or the experiment's `default`.
    pub fn config_or(&self, default: &str) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(default))
    }
}

impl DataExperimentCli {
    /// `config` (read from `origin`) with `--data` in place of its data file, if given.
    pub fn with_data(&self, mut config: SweepConfig, origin: &Path) -> Result<SweepConfig> {
        if let Some(data) = &self.data {
            if config.data.file.is_none() {
                return Err(crate::Error::format(
                    origin,
                    "--data replaces data.file, but this config generates synthetic data",
                ));
            }
            config.data.file = Some(data.clone());
        }
        Ok(config)
    }
}

/// The whole of a sweep-shaped experiment binary: parse the command line,
/// load the config (`default_config` unless given), run the sweep, draw the
/// regime figures and `extra`; exit 2 with one line on any error.
pub fn experiment_main(default_config: &str, extra: &[FigureFn]) -> ExitCode {
    use clap::Parser;
    let args = DataExperimentCli::parse();
    let cli = &args.experiment;
    super::set_tensor_threads(cli.sweep.jobs());
    let path = cli.config_or(default_config);
    exit_code((|| {
        let config = args.with_data(SweepConfig::load(&path)?, &path)?;
        let figures = cli
            .sweep
            .figures
            .clone()
            .unwrap_or_else(|| cli.sweep.out(&config));
        if let Some(results) = run_sweep(config, &cli.sweep)? {
            for draw in extra {
                draw(&results, &figures)?;
            }
        }
        Ok(())
    })())
}

/// Runs `config` as `args` say. Returns the results when the whole grid is
/// finished (always, unless other shards still have cells to run).
pub fn run_sweep(config: SweepConfig, args: &SweepArgs) -> Result<Option<Results>> {
    let out = args.out(&config);
    let sweep = args.prepare(config)?;
    let ran = sweep.run(args.shard, args.jobs())?;
    eprintln!(
        "ran {ran} cells of shard {}/{} in {}",
        args.shard.index,
        args.shard.count,
        out.display()
    );
    collect(&out, args.figures.as_deref().unwrap_or(&out))
}

/// Collects the sweep in `out` and writes results and figures into `figures`;
/// with cells still missing it only says which, and returns None.
pub fn collect(out: &Path, figures: &Path) -> Result<Option<Results>> {
    let results = Results::collect(out)?;
    if !results.missing.is_empty() {
        eprintln!(
            "{} cells have no result yet (other shards?), e.g. {}; run `regimes collect {}` when they finish",
            results.missing.len(),
            results.missing[0],
            out.display()
        );
        return Ok(None);
    }
    std::fs::create_dir_all(figures).map_err(|e| crate::Error::io(figures, e))?;
    let mut written = results.write(figures)?.to_vec();
    written.extend(super::regime_figures(&results, figures)?);
    written.extend(super::sample_grids(out, &results, figures)?);
    print!("{}", results.summary());
    eprintln!("wrote {} files to {}", written.len(), figures.display());
    Ok(Some(results))
}

/// The exit code of a command: 0, or 2 after printing the error on one line.
pub fn exit_code(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes `dir/name.csv` and the figure `dir/name.png` and `.svg`, creating
/// `dir`: the output of a single-figure experiment.
pub fn write_csv_and_figure(dir: &Path, name: &str, csv: &str, figure: &impl Figure) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    write_atomic(&dir.join(format!("{name}.csv")), csv.as_bytes())?;
    save_figure(&dir.join(name), figure)?;
    eprintln!("wrote {name}.csv and figures to {}", dir.display());
    Ok(())
}
