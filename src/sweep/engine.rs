//! Running a sweep: the grid of cells, which of them this shard owns, and a
//! pool of workers that runs the unfinished ones.
//!
//! Resuming is skipping: a cell with a `cell.json` is done, a cell with a
//! training checkpoint continues from it, so a killed sweep loses at most the
//! steps since the last checkpoint of the cells in progress.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::{DType, Device, Tensor};

use super::cell::{run_cells, Cell, Model, CELL_FILE};
use super::config::SweepConfig;
use super::failed::{FailedCell, FAILED_FILE};
use super::lock::{CellLock, DEFAULT_STALE_AFTER, LOCK_FILE};
use crate::data::{
    check_label_count, load_examples, nested_subset, read_labels, training_labels, training_part,
    Synthetic,
};
use crate::io::write_atomic;
use crate::jobs::{progress_bar, run_parallel};
use crate::nn::train::together::why_alone;
use crate::nn::train::LabelConditioning;
use crate::nn::Arch;
use crate::{Error, Result};

/// Which cells a process runs: cell k (in grid order) belongs to shard k mod count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether cell k of the grid belongs to this shard (k mod n = i).
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = Error;
    /// `i/n` with 0 <= i < n, e.g. `$SLURM_ARRAY_TASK_ID/8`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("--shard", s, "use i/n with 0 <= i < n, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        match index < count {
            true => Ok(Shard { index, count }),
            false => Err(bad()),
        }
    }
}

/// A prepared sweep: the config, its output folder, the examples, the true
/// distribution when it is synthetic, and the fresh points of the denoiser gaps.
pub struct Sweep {
    pub config: SweepConfig,
    pub root: PathBuf,
    pub data_origin: String,
    examples: Tensor,
    /// One class label per example (THEORY §10), when the data has them:
    /// a synthetic draw's component, or the labels of the data file.
    labels: Option<Vec<u32>>,
    pub truth: Option<Synthetic>,
    /// Clean points for the gaps: fresh draws (rows from 2^40 on) of a
    /// synthetic distribution, or the rows of a data file outside the largest
    /// training set.
    pub fresh: Tensor,
    /// Where the networks train and run (CPU unless set after `prepare`);
    /// sampling noise, references and scores stay on the CPU, so a GPU run
    /// starts every sample from the same noise as a CPU run.
    pub device: Device,
    /// A cell lock whose heartbeat stopped this long ago is taken over.
    pub lock_stale_after: Duration,
    /// Most MLP cells a worker trains together as one network (1: each alone).
    pub together: usize,
}

impl Sweep {
    /// Generates or loads the examples and writes the resolved config to
    /// `root/sweep.toml`; refuses a `root` that holds a sweep of another config.
    pub fn prepare(config: SweepConfig, root: &Path) -> Result<Self> {
        let sweep = Self::open(config, root)?;
        // Finished cells are reused, so they must come from this very config;
        // the RP criterion only changes how `collect` scores them.
        let existing = root.join("sweep.toml");
        if existing.exists() && !same_cells(&SweepConfig::load(&existing)?, &sweep.config) {
            return Err(Error::format(
                &existing,
                "holds a sweep with a different config; choose another --out or delete that folder",
            ));
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let resolved =
            toml::to_string(&sweep.config).map_err(|e| Error::format(root, e.to_string()))?;
        write_atomic(&existing, resolved.as_bytes())?;
        Ok(sweep)
    }

    /// The sweep of `config` in `root`, its examples generated or loaded,
    /// writing nothing (what `collect` reads).
    pub fn open(config: SweepConfig, root: &Path) -> Result<Self> {
        let gap_points = config.metrics.gap_points;
        let largest = config.ns.iter().copied().max().unwrap_or(1);
        let (examples, labels, truth, fresh, data_origin) = match (
            &config.data.synthetic,
            &config.data.file,
        ) {
            (Some(spec), _) => {
                let dist = Synthetic::new(spec.clone(), config.data.seed)?;
                let mut examples = dist.sample(config.synthetic_rows())?.to_dtype(DType::F32)?;
                if let Some(shape) = &config.data.shape {
                    let (rows, dim) = examples.dims2()?;
                    if shape.iter().product::<usize>() != dim {
                        return Err(Error::shape(
                            "data.shape",
                            format!("{dim} values"),
                            format!("{shape:?}"),
                        ));
                    }
                    examples = examples.reshape([&[rows][..], shape].concat())?;
                }
                let fresh = dist.sample_fresh(gap_points)?;
                let labels = dist.labels(0, examples.dim(0)?);
                let origin = format!("synthetic {} seed {}", spec_name(spec), config.data.seed);
                (examples, Some(labels), Some(dist), fresh, origin)
            }
            (None, Some(path)) => {
                let (examples, labels) = match &config.data.import {
                    Some(import) => {
                        let images = import.read(path)?;
                        (images.pixels, images.labels)
                    }
                    None => (load_examples(path)?, None),
                };
                let count = examples.dim(0)?;
                let labels = match (&config.data.labels, labels) {
                    (Some(file), _) => Some(read_labels_of(file, count)?),
                    (None, Some(labels)) => Some(labels),
                    (None, None) => {
                        let beside = path.join("labels.npy");
                        match path.is_dir() && beside.exists() {
                            true => Some(read_labels_of(&beside, count)?),
                            false => None,
                        }
                    }
                };
                let (examples, labels) = match &config.data.classes {
                    Some(classes) => of_classes(examples, labels, classes)?,
                    None => (examples, labels),
                };
                let total = examples.dim(0)?;
                let order = nested_subset(total, total, config.subset_seed)?;
                // Past every training set, the disjoint parts' too.
                let used = largest.saturating_mul(config.parts()).min(total);
                let held_out: Vec<u32> = order[used..]
                    .iter()
                    .take(gap_points)
                    .map(|&i| i as u32)
                    .collect();
                if held_out.is_empty() {
                    return Err(Error::invalid(
                        "ns",
                        largest,
                        format!("{} holds {total} examples: keep the largest N below that so the gaps have held-out points", path.display()),
                    ));
                }
                let index = Tensor::new(held_out.as_slice(), examples.device())?;
                let fresh = examples.index_select(&index, 0)?.flatten_from(1)?;
                let origin = match &config.data.classes {
                    Some(classes) => format!("{} classes {classes:?}", path.display()),
                    None => path.display().to_string(),
                };
                (examples, labels, None, fresh, origin)
            }
            (None, None) => unreachable!("validated: one data source"),
        };
        if config.train.p_uncond.is_some() && labels.is_none() {
            return Err(Error::invalid(
                "train.p_uncond",
                "without labels",
                "class-conditional training needs data.labels, an import with labels, or a data folder with labels.npy",
            ));
        }
        if largest > examples.dim(0)? {
            return Err(Error::invalid(
                "ns",
                largest,
                format!("exceeds the {} examples available", examples.dim(0)?),
            ));
        }
        Ok(Sweep {
            config,
            root: root.to_path_buf(),
            data_origin,
            examples,
            labels,
            truth,
            fresh: fresh.to_dtype(DType::F64)?,
            device: Device::Cpu,
            lock_stale_after: DEFAULT_STALE_AFTER,
            together: 1,
        })
    }

    /// The nested training set of size `n`, [n, ...] as the examples are shaped.
    pub fn training_set(&self, n: usize) -> Result<Tensor> {
        self.training_part(n, 0)
    }

    /// Disjoint training set `part` of size `n` (part 0: the nested set).
    pub fn training_part(&self, n: usize, part: usize) -> Result<Tensor> {
        training_part(&self.examples, n, part, self.config.subset_seed)
    }

    /// Rows of the data's distribution that no model trains on, shaped like
    /// the examples (f32): the held-out points of the gaps, also each
    /// model's held-out loss rows (THEORY §15).
    pub fn heldout_rows(&self) -> Result<Tensor> {
        let shape = [&[self.fresh.dim(0)?][..], self.sample_shape()].concat();
        Ok(self.fresh.reshape(shape)?.to_dtype(DType::F32)?)
    }

    /// The shape of one example: \[n\] for rows, \[C, H, W\] for images.
    pub fn sample_shape(&self) -> &[usize] {
        &self.examples.dims()[1..]
    }

    /// The labels of training set `part` of size `n` (part 0: the nested
    /// set), row for row, when the data has labels.
    pub fn training_labels(&self, n: usize, part: usize) -> Result<Option<Vec<u32>>> {
        self.labels
            .as_deref()
            .map(|all| training_labels(all, n, part, self.config.subset_seed))
            .transpose()
    }

    /// How the trained models learn the labels: `Some` when the sweep is
    /// class-conditional, with the classes of the whole data set.
    pub fn conditioning(&self) -> Option<LabelConditioning> {
        let p_uncond = self.config.train.p_uncond?;
        let labels = self.labels.as_deref()?;
        Some(LabelConditioning::for_labels(labels, p_uncond))
    }

    /// Every cell of `config`'s grid, in a fixed order: per N, the empirical
    /// denoiser, then each model with each seed.
    pub fn grid(c: &SweepConfig) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &n in &c.ns {
            cells.push(Cell {
                n,
                model: Model::Empirical,
            });
            for model in &c.models {
                for &seed in &c.seeds {
                    cells.push(Cell {
                        n,
                        model: Model::Trained {
                            arch: model.arch.clone(),
                            framework: model.framework,
                            seed,
                        },
                    });
                }
            }
        }
        cells
    }

    /// Runs this shard's unfinished cells on `jobs` worker threads
    /// ([`run_parallel`]), in the groups of [`Sweep::groups`], showing a
    /// progress bar over their training steps. Each cell is run under its
    /// lock (`lock`), skipped while another worker holds it; a cell whose
    /// training diverges is recorded as failed (`failed`) and the others go
    /// on. Returns the number of cells run.
    pub fn run(&self, shard: Shard, jobs: usize) -> Result<usize> {
        let pending: Vec<Cell> = Sweep::grid(&self.config)
            .into_iter()
            .enumerate()
            .filter(|(k, _)| shard.owns(*k))
            .map(|(_, c)| c)
            .filter(|c| !self.ended(c))
            .collect();
        let total_steps: u64 = pending.iter().map(|c| c.steps(self)).sum();
        let bar = progress_bar(total_steps, "steps");
        let ran = AtomicUsize::new(0);
        run_parallel(&self.groups(pending, jobs), jobs, &bar, |group| {
            let mut locks = Vec::new();
            let mut cells = Vec::new();
            for cell in group {
                let dir = cell.dir(&self.root);
                match CellLock::acquire(&dir, self.lock_stale_after)? {
                    None => bar.suspend(|| {
                        eprintln!(
                            "{}: another worker holds its lock ({LOCK_FILE}), skipped",
                            dir.display()
                        )
                    }),
                    // Another worker may have finished it before we took the lock.
                    Some(lock) if !self.ended(cell) => {
                        locks.push(lock);
                        cells.push(cell);
                        continue;
                    }
                    Some(_) => {}
                }
                bar.inc(cell.steps(self));
            }
            ran.fetch_add(cells.len(), Ordering::SeqCst);
            let outcomes = run_cells(self, &cells, &|steps| bar.inc(steps))?;
            for (cell, outcome) in cells.into_iter().zip(outcomes) {
                if let Err(e) = outcome {
                    let dir = cell.dir(&self.root);
                    FailedCell::record(cell, &dir, e).map_err(|e| Error::at(&dir, e))?;
                }
            }
            Ok(())
        })?;
        Ok(ran.into_inner())
    }

    /// `pending` cells in the groups a worker runs at once: the trained
    /// cells that can train together (`nn::train::together::why_alone`),
    /// by network, in groups of at most `self.together` cells, each
    /// network's cells dealt into at least `jobs` groups so that every job
    /// has work; every other cell alone. Cells keep their grid order within
    /// a group.
    pub fn groups(&self, pending: Vec<Cell>, jobs: usize) -> Vec<Vec<Cell>> {
        let labelled = self.conditioning().is_some();
        let mut alone = Vec::new();
        let mut by_network: Vec<(Arch, Vec<Cell>)> = Vec::new();
        for cell in pending {
            let arch = match &cell.model {
                Model::Trained {
                    arch, framework, ..
                } if why_alone(arch, *framework, labelled).is_none() => arch.clone(),
                _ => {
                    alone.push(vec![cell]);
                    continue;
                }
            };
            match by_network.iter_mut().find(|(a, _)| *a == arch) {
                Some((_, cells)) => cells.push(cell),
                None => by_network.push((arch, vec![cell])),
            }
        }
        let mut groups = Vec::new();
        for (_, cells) in by_network {
            let size = cells.len().div_ceil(jobs.max(1)).min(self.together.max(1));
            let mut cells = cells.into_iter().peekable();
            while cells.peek().is_some() {
                groups.push(cells.by_ref().take(size).collect());
            }
        }
        groups.extend(alone);
        groups
    }

    /// Whether `cell` has ended: scored (`cell.json`) or failed (`failed.json`).
    pub fn ended(&self, cell: &Cell) -> bool {
        let dir = cell.dir(&self.root);
        dir.join(CELL_FILE).exists() || dir.join(FAILED_FILE).exists()
    }
}

/// The examples (and labels) whose label is one of `classes`, in order.
fn of_classes(
    examples: Tensor,
    labels: Option<Vec<u32>>,
    classes: &[u32],
) -> Result<(Tensor, Option<Vec<u32>>)> {
    let labels = labels.ok_or_else(|| {
        Error::invalid(
            "data.classes",
            format!("{classes:?}"),
            "needs labelled data: data.labels, an import with labels, or a folder with labels.npy",
        )
    })?;
    let keep: Vec<u32> = (0..labels.len() as u32)
        .filter(|&i| classes.contains(&labels[i as usize]))
        .collect();
    if keep.is_empty() {
        return Err(Error::invalid(
            "data.classes",
            format!("{classes:?}"),
            "no example has one of these labels",
        ));
    }
    let index = Tensor::new(keep.as_slice(), examples.device())?;
    let kept = keep.iter().map(|&i| labels[i as usize]).collect();
    Ok((examples.index_select(&index, 0)?, Some(kept)))
}

fn read_labels_of(file: &Path, count: usize) -> Result<Vec<u32>> {
    let labels = read_labels(file)?;
    check_label_count(&labels, count, file)?;
    Ok(labels)
}

/// Whether two configs give the same cells: equal up to the RP criterion.
fn same_cells(a: &SweepConfig, b: &SweepConfig) -> bool {
    let mut a = a.clone();
    a.metrics.rp_similarity = b.metrics.rp_similarity;
    a.metrics.rp_threshold = b.metrics.rp_threshold;
    a == *b
}

fn spec_name(spec: &crate::data::SyntheticSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}
