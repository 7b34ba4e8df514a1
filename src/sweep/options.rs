//! What every sweep-shaped run takes from its command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::Device;

use super::config::SweepConfig;
use super::engine::{Shard, Sweep};
use super::lock::DEFAULT_STALE_AFTER;
use crate::{Error, Result};

/// What every experiment takes from its command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where its cells or runs go (default: `runs/<config name>`).
    pub out: Option<PathBuf>,
    /// Where its tables and figures go (default: the experiment's own choice).
    pub figures: Option<PathBuf>,
    /// The share of the cells this process runs.
    pub shard: Shard,
    /// Cells trained at once.
    pub jobs: usize,
    /// Where networks train and run.
    pub device: Device,
    /// Examples read from this file instead of the config's `data.file`.
    pub data: Option<PathBuf>,
    /// A cell lock whose heartbeat stopped this long ago is taken over.
    pub lock_stale_after: Duration,
    /// Most MLP cells trained together as one network ([`Sweep::groups`]).
    pub together: usize,
}

impl RunOptions {
    /// Every cell of the grid, one job per core, on the CPU.
    pub fn new() -> Self {
        Self {
            out: None,
            figures: None,
            shard: Shard::ALL,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: Device::Cpu,
            data: None,
            lock_stale_after: DEFAULT_STALE_AFTER,
            together: 1,
        }
    }

    /// `--out`, or `runs/<name>`.
    pub fn out_or_runs(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| Path::new("runs").join(name))
    }

    /// The sweep's folder: `--out`, or `runs/<config name>`.
    pub fn sweep_root(&self, config: &SweepConfig) -> PathBuf {
        self.out_or_runs(&config.name)
    }

    /// The sweep of `config` in [`Self::sweep_root`], its networks on `device`.
    pub fn prepare(&self, config: SweepConfig) -> Result<Sweep> {
        let root = self.sweep_root(&config);
        self.prepare_in(config, &root)
    }

    /// The sweep of `config` in `root`, its networks on `device`.
    pub fn prepare_in(&self, config: SweepConfig, root: &Path) -> Result<Sweep> {
        let mut sweep = Sweep::prepare(config, root)?;
        sweep.device = self.device.clone();
        sweep.lock_stale_after = self.lock_stale_after;
        sweep.together = self.together;
        Ok(sweep)
    }

    /// `config` with `--data` in place of its data file, if given, and
    /// checked as a sweep file is (a sweep inside an experiment's config is
    /// read with the rest of it, unchecked).
    pub fn with_data(&self, mut config: SweepConfig, origin: &Path) -> Result<SweepConfig> {
        if let Some(data) = &self.data {
            if config.data.file.is_none() {
                return Err(Error::format(
                    origin,
                    "--data replaces data.file, but this config generates synthetic data",
                ));
            }
            config.data.file = Some(data.clone());
        }
        config.checked(origin)
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self::new()
    }
}
