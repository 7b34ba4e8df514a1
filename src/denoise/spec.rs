//! `DenoiserSpec`: the one way to name a denoiser (`kind:path`, in the CLI
//! and in configs) and the one factory that builds it. A new denoiser kind
//! is a new file implementing [`Denoiser`] plus one variant here.
//!
//! ```
//! use diffusion_regimes::denoise::DenoiserSpec;
//! let spec: DenoiserSpec = "empirical:train.npy".parse().unwrap();
//! assert_eq!(spec.to_string(), "empirical:train.npy");
//! assert!("nearest:train.npy".parse::<DenoiserSpec>().is_err());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use super::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use crate::data::load_distribution;
use crate::data::npy::read_rows;
use crate::nn::checkpoint::{load_model, Weights};
use crate::{Error, Result};

/// A denoiser named by what it is built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DenoiserSpec {
    /// `empirical:T.npy`: the memorizing optimal denoiser of the rows of T (THEORY §4).
    Empirical(PathBuf),
    /// `gaussian:T.npy`: the Gaussian denoiser fitted to the rows of T (THEORY §5).
    Gaussian(PathBuf),
    /// `truth:DIR`: the exact denoiser of a distribution saved by `regimes data` (THEORY §6).
    Truth(PathBuf),
    /// `model:RUN` (EMA weights) or `model-raw:RUN` (the optimizer's
    /// weights): a network trained by `regimes train`, at its latest checkpoint.
    Model { run: PathBuf, weights: Weights },
}

/// The accepted forms, for error messages.
pub const SPEC_FORMS: &str =
    "empirical:T.npy, gaussian:T.npy, truth:DIR, model:RUN_DIR or model-raw:RUN_DIR";

impl DenoiserSpec {
    /// Builds the denoiser; analytic ones compute in `dtype` (a network keeps
    /// its own), networks run on `device`.
    pub fn build(&self, dtype: DType, device: &Device) -> Result<Box<dyn Denoiser>> {
        Ok(match self {
            Self::Empirical(train) => {
                Box::new(EmpiricalDenoiser::new(&read_rows(train)?.to_dtype(dtype)?)?)
            }
            Self::Gaussian(train) => Box::new(GaussianDenoiser::fit(&read_rows(train)?)?),
            Self::Truth(dir) => Box::new(load_distribution(dir)?),
            Self::Model { run, weights } => Box::new(load_model(run, *weights, device)?),
        })
    }

    /// The file or folder the denoiser is built from.
    pub fn path(&self) -> &Path {
        match self {
            Self::Empirical(p) | Self::Gaussian(p) | Self::Truth(p) => p,
            Self::Model { run, .. } => run,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Empirical(_) => "empirical",
            Self::Gaussian(_) => "gaussian",
            Self::Truth(_) => "truth",
            Self::Model {
                weights: Weights::Ema,
                ..
            } => "model",
            Self::Model {
                weights: Weights::Model,
                ..
            } => "model-raw",
        }
    }
}

impl DenoiserSpec {
    /// The denoiser of kind `kind` (`empirical`, `gaussian`, `truth`,
    /// `model` or `model-raw`) built from `path`.
    pub fn from_kind(kind: &str, path: PathBuf) -> Result<Self> {
        Ok(match kind {
            "empirical" => Self::Empirical(path),
            "gaussian" => Self::Gaussian(path),
            "truth" => Self::Truth(path),
            "model" => Self::Model {
                run: path,
                weights: Weights::Ema,
            },
            "model-raw" => Self::Model {
                run: path,
                weights: Weights::Model,
            },
            _ => {
                return Err(Error::invalid(
                    "denoiser",
                    kind,
                    format!("use {SPEC_FORMS}"),
                ))
            }
        })
    }

    /// The same kind of denoiser built from `path`.
    pub fn with_path(self, path: PathBuf) -> Self {
        match self {
            Self::Empirical(_) => Self::Empirical(path),
            Self::Gaussian(_) => Self::Gaussian(path),
            Self::Truth(_) => Self::Truth(path),
            Self::Model { weights, .. } => Self::Model { run: path, weights },
        }
    }
}

impl FromStr for DenoiserSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::invalid("denoiser", text, format!("use {SPEC_FORMS}"));
        let (kind, path) = text.split_once(':').ok_or_else(bad)?;
        if path.is_empty() {
            return Err(bad());
        }
        Self::from_kind(kind, PathBuf::from(path)).map_err(|_| bad())
    }
}

impl fmt::Display for DenoiserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.path().display())
    }
}

impl TryFrom<String> for DenoiserSpec {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<DenoiserSpec> for String {
    fn from(spec: DenoiserSpec) -> String {
        spec.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips_through_text_and_json() {
        for text in [
            "empirical:a/train.npy",
            "gaussian:t.npy",
            "truth:runs/dist",
            "model:runs/m",
            "model-raw:runs/m",
        ] {
            let spec: DenoiserSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<DenoiserSpec>(&json).unwrap(), spec);
        }
    }

    #[test]
    fn malformed_specs_name_the_accepted_forms() {
        for text in ["empirical", "empirical:", "kde:t.npy"] {
            let message = text.parse::<DenoiserSpec>().unwrap_err().to_string();
            assert!(
                message.contains(text) && message.contains("truth:DIR"),
                "{message}"
            );
        }
    }
}
