//! The one way every sweep-shaped experiment runs: prepare, run this shard's
//! cells, and, when the grid is complete, collect, write results and figures.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::engine::Sweep;
use super::options::RunOptions;
use super::results::Results;
use crate::Result;

/// Extra figures an experiment draws from a finished sweep, beside the regime figures.
pub type FigureFn = fn(&Results, &Path) -> Result<Vec<PathBuf>>;

/// A finished sweep: its results and the folder they were collected from
/// (whose samples the image grids show).
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    #[serde(flatten)]
    pub results: Results,
    #[serde(skip)]
    pub root: PathBuf,
}

/// Runs the cells of `sweep` that `options.shard` owns. Returns the results
/// when the whole grid is finished (always, unless other shards still have
/// cells to run).
pub fn run_sweep(sweep: &Sweep, options: &RunOptions) -> Result<Option<SweepReport>> {
    let ran = sweep.run(options.shard, options.jobs)?;
    eprintln!(
        "ran {ran} cells of shard {}/{} in {}",
        options.shard.index,
        options.shard.count,
        sweep.root.display()
    );
    finished(&sweep.root)
}

/// The sweep in `root` if every cell has a result; otherwise it says which
/// are missing and returns None. Reads only.
pub fn finished(root: &Path) -> Result<Option<SweepReport>> {
    let results = Results::collect(root)?;
    if !results.missing.is_empty() {
        eprintln!(
            "{} cells have no result yet (other shards?), e.g. {}; run `regimes collect {}` when they finish",
            results.missing.len(),
            results.missing[0],
            root.display()
        );
        return Ok(None);
    }
    Ok(Some(SweepReport {
        results,
        root: root.to_path_buf(),
    }))
}

/// Writes a finished sweep's results, regime figures, sample grids and
/// `extra` figures into `dir`, and prints its summary; then an error naming
/// the cells whose training diverged, if any (their scores are absent).
pub fn write_sweep(report: &SweepReport, dir: &Path, extra: &[FigureFn]) -> Result<()> {
    write_sweep_files(report, dir, extra)?;
    report.results.check_failed()
}

fn write_sweep_files(report: &SweepReport, dir: &Path, extra: &[FigureFn]) -> Result<()> {
    let results = &report.results;
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let mut written = results.write(dir)?.to_vec();
    written.extend(super::regime_figures(results, dir)?);
    written.extend(super::sample_grids(&report.root, results, dir)?);
    print!("{}", results.summary());
    for draw in extra {
        written.extend(draw(results, dir)?);
    }
    eprintln!("wrote {} files to {}", written.len(), dir.display());
    Ok(())
}

/// `regimes collect`: writes the sweep in `root` into `dir` once it is
/// finished. Reads the cells, writes nothing into `root`. Failed cells are
/// an error (after writing) unless `allow_failed`.
pub fn collect(root: &Path, dir: &Path, allow_failed: bool) -> Result<Option<SweepReport>> {
    let report = finished(root)?;
    if let Some(report) = &report {
        match allow_failed {
            true => write_sweep_files(report, dir, &[])?,
            false => write_sweep(report, dir, &[])?,
        }
    }
    Ok(report)
}
