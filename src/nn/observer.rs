//! What watches a training run: the [`Observer`] trait, and [`RunFiles`],
//! the observer that keeps the run folder's metrics and checkpoints, and
//! [`MetricsTable`], metrics.csv read back by column.

use std::ops::ControlFlow;
use std::path::Path;

use super::checkpoint;
use super::train::{Losses, Progress, TrainConfig, Trainer, BAND_NAMES};
use crate::io::read;
use crate::{Error, Result};

/// Watches a training run after each step (after argmin's observers): it
/// acts at its own cadence and may stop the run.
pub trait Observer {
    fn observe(&mut self, trainer: &Trainer, progress: &Progress) -> Result<ControlFlow<()>>;
}

impl<F: FnMut(&Progress) -> ControlFlow<()>> Observer for F {
    fn observe(&mut self, _: &Trainer, progress: &Progress) -> Result<ControlFlow<()>> {
        Ok(self(progress))
    }
}

/// The run folder's files as an observer: a metrics.csv row every
/// `log_every` steps and at each evaluation (its losses filled in), and a checkpoint ([`Trainer::save`]) every
/// `checkpoint_every` steps and at the last one, with the config's cadences.
pub struct RunFiles {
    log_every: u64,
    checkpoint_every: u64,
    rows: Vec<String>,
}

impl RunFiles {
    /// Continues the metrics of `trainer`'s folder up to its current step.
    pub fn new(trainer: &Trainer) -> Result<Self> {
        Ok(Self {
            log_every: trainer.config.log_every,
            checkpoint_every: trainer.config.checkpoint_every,
            rows: read_metrics(trainer.dir(), trainer.step())?,
        })
    }
}

impl Observer for RunFiles {
    fn observe(&mut self, trainer: &Trainer, p: &Progress) -> Result<ControlFlow<()>> {
        let last = p.step == p.steps;
        if p.step.is_multiple_of(self.log_every) || last || p.losses.is_some() {
            let mut row = format!(
                "{},{},{},{},{:.3}",
                p.step, p.loss, p.lr, p.grad_norm, p.seconds
            );
            if evaluates(&trainer.config) {
                row.push_str(&loss_cells(p.losses.as_ref()));
            }
            self.rows.push(row);
        }
        if p.step.is_multiple_of(self.checkpoint_every) || last {
            trainer.save(&self.rows)?;
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Whether a run's metrics.csv has the evaluation columns.
fn evaluates(config: &TrainConfig) -> bool {
    config.eval_points > 0
}

/// metrics.csv's header: the batch loss and optimizer state, then for a run
/// that evaluates, the losses on the fixed draws (THEORY §15) over all
/// points and per noise-level band.
pub(super) fn metrics_header(config: &TrainConfig) -> String {
    let mut header = String::from("step,loss,lr,grad_norm,seconds");
    if evaluates(config) {
        header.push_str(",train_loss,heldout_loss");
        for band in BAND_NAMES {
            header.push_str(&format!(",train_loss_{band},heldout_loss_{band}"));
        }
    }
    header.push('\n');
    header
}

/// The evaluation columns of a metrics.csv row (empty where the step was
/// not evaluated, a band had no point, or the run has no held-out rows).
fn loss_cells(losses: Option<&Losses>) -> String {
    let cell = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or(String::new(), |v| v.to_string())
    };
    let train = losses.map(|l| &l.train);
    let heldout = losses.and_then(|l| l.heldout.as_ref());
    let mut cells = format!(
        ",{},{}",
        cell(train.map(|l| l.total)),
        cell(heldout.map(|l| l.total))
    );
    for band in 0..BAND_NAMES.len() {
        cells.push_str(&format!(
            ",{},{}",
            cell(train.map(|l| l.bands[band])),
            cell(heldout.map(|l| l.bands[band]))
        ));
    }
    cells
}

/// metrics.csv of a run folder, its columns by name (empty cells NaN).
pub struct MetricsTable {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl MetricsTable {
    /// The table of the run folder `run`; an error naming the file and row
    /// for a row that does not fit the header or a cell that is no number.
    pub fn read(run: &Path) -> Result<Self> {
        let path = run.join(checkpoint::METRICS_FILE);
        let text =
            String::from_utf8(read(&path)?).map_err(|_| Error::format(&path, "not UTF-8"))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| Error::format(&path, "empty: no header"))?
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .enumerate()
            .map(|(k, line)| {
                let cells: Vec<&str> = line.split(',').collect();
                if cells.len() != header.len() {
                    return Err(Error::format(
                        &path,
                        format!(
                            "row {} has {} cells, the header {}",
                            k + 2,
                            cells.len(),
                            header.len()
                        ),
                    ));
                }
                cells
                    .iter()
                    .map(|c| match c.is_empty() {
                        true => Ok(f64::NAN),
                        false => c.parse().map_err(|_| {
                            Error::format(&path, format!("row {}: {c:?} is not a number", k + 2))
                        }),
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(Self { header, rows })
    }

    /// (step, value) of column `name` where it has a finite value; empty
    /// for a column the table lacks.
    pub fn column(&self, name: &str) -> Vec<(f64, f64)> {
        let Some(k) = self.header.iter().position(|h| h == name) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| (r[0], r[k]))
            .filter(|p| p.1.is_finite())
            .collect()
    }
}

/// Rows of an existing metrics.csv up to `step` (later rows belong to steps
/// that will be redone).
fn read_metrics(dir: &Path, step: u64) -> Result<Vec<String>> {
    let path = dir.join(checkpoint::METRICS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => return Ok(Vec::new()),
    };
    Ok(text
        .lines()
        .skip(1)
        .filter(|row| {
            row.split(',')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s <= step)
        })
        .map(str::to_string)
        .collect())
}
