//! A sweep's configuration, read from TOML: the data, the grid of training-set
//! sizes and models, and the settings (`settings`) of how each model is
//! trained, sampled and scored.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::settings::{MetricSettings, SamplingSettings, TrainSettings};
use crate::data::{ImageImport, SyntheticSpec};
use crate::framework::Framework;
use crate::io::read;
use crate::nn::Arch;
use crate::{Error, Result};

/// Where the examples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// A synthetic distribution generated on the fly; it also gives the true denoiser.
    pub synthetic: Option<SyntheticSpec>,
    /// Or examples from a file (.npy, or a folder holding data.npy), or
    /// images in any format of [`ImageImport`] when `import` says how.
    pub file: Option<PathBuf>,
    /// How to read `file` as images, e.g. `{ format = "idx", size = [8, 8] }`.
    pub import: Option<ImageImport>,
    /// The examples' class labels (THEORY §10) for `file` data, when neither
    /// `import` reads them nor `file` is a folder holding labels.npy;
    /// synthetic draws carry their component as the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Only the examples of these labels (file data with labels), e.g. the
    /// digits [0, 1, 2, 3, 4]. Omitted: every example.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<u32>>,
    /// Seed of the synthetic distribution and of its draws.
    #[serde(default)]
    pub seed: u64,
    /// Rows drawn from the synthetic distribution (default: the largest N,
    /// times the seeds under the disjoint split).
    pub rows: Option<usize>,
    /// Shape of one synthetic example, e.g. [1, 8, 8] to train a U-Net on
    /// ambient-64 data; its product must equal the ambient dimension.
    pub shape: Option<Vec<usize>>,
}

/// One model of a sweep: the architecture's fields (`kind = "mlp"`, ...)
/// and, optionally, `framework = "vp-eps"` (THEORY §9; default EDM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    #[serde(default, skip_serializing_if = "Framework::is_edm")]
    pub framework: Framework,
    #[serde(flatten)]
    pub arch: Arch,
}

impl From<Arch> for ModelSpec {
    /// The architecture trained with EDM.
    fn from(arch: Arch) -> Self {
        ModelSpec {
            framework: Framework::EDM,
            arch,
        }
    }
}

/// How a sweep's training sets of one size relate ([`SweepConfig::split`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Nested,
    Disjoint,
}

impl Split {
    pub fn is_nested(&self) -> bool {
        *self == Split::Nested
    }
}

/// A whole sweep: every (N, model, seed) cell of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub name: String,
    pub data: DataSource,
    /// Training-set sizes N (nested subsets).
    pub ns: Vec<usize>,
    #[serde(default)]
    pub subset_seed: u64,
    /// Models (an architecture and its training framework); each is trained
    /// at every N with every seed.
    pub models: Vec<ModelSpec>,
    /// How the training sets of one N relate: `nested` (every model learns
    /// the same first N of one permutation) or `disjoint` (the seed at
    /// position k of `seeds` learns the permutation's k-th block of N).
    #[serde(default, skip_serializing_if = "Split::is_nested")]
    pub split: Split,
    /// Seeds of the weights and batches.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    pub train: TrainSettings,
    pub sampling: SamplingSettings,
    pub metrics: MetricSettings,
}

impl SweepConfig {
    /// Disjoint training sets of one N the grid uses: one per seed when
    /// split, else the one nested set.
    pub fn parts(&self) -> usize {
        match self.split {
            Split::Nested => 1,
            Split::Disjoint => self.seeds.len().max(1),
        }
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// Reads the TOML file `path` into a `T`; errors name the file and the field.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = String::from_utf8(read(path)?).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    parse_toml(&text, path)
}

fn parse_toml<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::parse(origin, e))
}

impl SweepConfig {
    /// Reads and validates a TOML file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        Self::checked(load_toml(path)?, path)
    }

    /// Parses TOML `text` (`origin` names it in errors) and validates it.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        Self::checked(parse_toml(text, origin)?, origin)
    }

    /// `self` validated (what [`Self::load`] and [`Self::parse`] apply), for a
    /// sweep read as part of another config; errors name `origin`.
    pub fn checked(self, origin: &Path) -> Result<Self> {
        self.validate().map_err(|e| Error::at(origin, e))?;
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        if self.data.synthetic.is_some() == self.data.file.is_some() {
            return Err(Error::invalid(
                "data",
                "synthetic and file",
                "give exactly one of data.synthetic or data.file",
            ));
        }
        if self.data.import.is_some() && self.data.file.is_none() {
            return Err(Error::invalid(
                "data.import",
                "without data.file",
                "import says how to read data.file; give the file",
            ));
        }
        if self.data.labels.is_some() && self.data.file.is_none() {
            return Err(Error::invalid(
                "data.labels",
                "without data.file",
                "synthetic data carries its components as labels",
            ));
        }
        if self.data.classes.is_some() && self.data.file.is_none() {
            return Err(Error::invalid(
                "data.classes",
                "without data.file",
                "selects labelled examples of a file; a synthetic distribution's components are its own",
            ));
        }
        if let Some(p) = self.train.p_uncond {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::invalid("train.p_uncond", p, "must lie in [0, 1]"));
            }
        }
        if self.ns.is_empty() || self.ns.contains(&0) {
            return Err(Error::invalid(
                "ns",
                format!("{:?}", self.ns),
                "need sizes >= 1",
            ));
        }
        for (name, empty) in [
            ("models", self.models.is_empty()),
            ("seeds", self.seeds.is_empty()),
            ("metrics.gap_sigmas", self.metrics.gap_sigmas.is_empty()),
        ] {
            if empty {
                return Err(Error::invalid(name, "[]", "must list at least one"));
            }
        }
        if self.sampling.samples < 2 {
            return Err(Error::invalid(
                "sampling.samples",
                self.sampling.samples,
                "need at least 2",
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                &self.name,
                "use a plain folder name",
            ));
        }
        let budgets = &self.train.budgets;
        if !budgets.is_empty()
            && (budgets.windows(2).any(|w| w[0] >= w[1])
                || budgets[0] == 0
                || budgets.last() != Some(&self.train.steps))
        {
            return Err(Error::invalid(
                "train.budgets",
                format!("{budgets:?}"),
                format!(
                    "list increasing step counts ending at train.steps = {}",
                    self.train.steps
                ),
            ));
        }
        self.sampling.schedule.validate()?;
        self.metrics
            .gap_sigmas
            .iter()
            .try_for_each(|&s| crate::error::check_sigma(s))
    }

    /// Rows of the synthetic data set: enough for the largest N (once per
    /// seed under the disjoint split).
    pub fn synthetic_rows(&self) -> usize {
        let needed = self.ns.iter().copied().max().unwrap_or(1) * self.parts();
        self.data.rows.unwrap_or(needed).max(needed)
    }
}
