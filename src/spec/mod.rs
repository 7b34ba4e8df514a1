//! `DenoiserSpec`: the one way to name a denoiser (`kind:path`, or
//! `kind:path:param` for the kinds with a parameter, in the CLI and in
//! configs) and the one factory that builds it. A new denoiser kind
//! is a new file implementing [`Denoiser`] plus one line in [`DENOISERS`].
//! It sits above `denoise`, `data` and `nn`: it builds exact denoisers from
//! files and trained networks from their run folders.
//!
//! ```
//! use diffusion_regimes::spec::DenoiserSpec;
//! let spec: DenoiserSpec = "empirical:train.npy".parse().unwrap();
//! assert_eq!(spec.to_string(), "empirical:train.npy");
//! assert!("nearest:train.npy".parse::<DenoiserSpec>().is_err());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::data::{data_file, load_distribution};
use crate::denoise::Denoiser;
use crate::framework::Framework;
use crate::nn::checkpoint::read_state;
use crate::{Error, Result};

mod class;
mod examples;
mod kinds;

pub use class::{class_denoiser, class_denoiser_from};
pub use examples::{training_examples, training_images, training_rows};
pub use kinds::{spec_forms, Build, DenoiserKind, Input, Source, DENOISERS};

/// A denoiser named by its kind and the file or folder it is built from.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DenoiserSpec {
    kind: &'static DenoiserKind,
    path: PathBuf,
    param: Option<String>,
}

impl DenoiserSpec {
    /// The denoiser of kind `kind` (a name in [`DENOISERS`]) built from `path`.
    pub fn new(kind: &str, path: PathBuf) -> Result<Self> {
        Self::with_param(kind, path, None)
    }

    /// As [`DenoiserSpec::new`], with the parameter the kind takes (and only then).
    pub fn with_param(kind: &str, path: PathBuf, param: Option<String>) -> Result<Self> {
        let kind = DenoiserKind::named(kind)?;
        match (kind.param, &param) {
            (Some(_), Some(p)) if !p.is_empty() => {}
            (None, None) => {}
            _ => {
                let form = spec_forms();
                return Err(Error::invalid(
                    "denoiser parameter",
                    format!("{param:?}"),
                    form,
                ));
            }
        }
        Ok(Self { kind, path, param })
    }

    /// Builds the denoiser; analytic ones compute in `dtype` (a network keeps
    /// its own), networks run on `device`.
    pub fn build(&self, dtype: DType, device: &Device) -> Result<Box<dyn Denoiser>> {
        let param = self.param.as_deref().unwrap_or("");
        self.kind
            .build_from(self.input(dtype)?, param, dtype, device)
            .map_err(|e| match e {
                // Training examples of the wrong shape: name their file.
                Error::Shape { .. } => Error::at(&data_file(&self.path), e),
                e => e,
            })
    }

    /// What the denoiser is built from, read from its path: examples as
    /// [`training_examples`] reads them, a distribution, or the run folder.
    pub fn input(&self, dtype: DType) -> Result<Input<'_>> {
        Ok(match self.kind.source() {
            Source::TrainingRows => Input::Examples(training_examples(&self.path, dtype)?),
            Source::Distribution => Input::Distribution(load_distribution(&self.path)?),
            Source::Run => Input::Run(&self.path),
        })
    }

    /// The parameter after the path, for the kinds that take one.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    pub fn kind(&self) -> &'static DenoiserKind {
        self.kind
    }

    /// The file or folder the denoiser is built from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The training framework of a trained model (THEORY §9), from its run
    /// folder; None for an analytic denoiser, which has none.
    pub fn framework(&self) -> Result<Option<Framework>> {
        match self.kind.source() {
            Source::Run => Ok(Some(read_state(&self.path)?.config.framework)),
            _ => Ok(None),
        }
    }
}

impl PartialEq for DenoiserSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name && self.path == other.path && self.param == other.param
    }
}

impl Eq for DenoiserSpec {}

impl fmt::Debug for DenoiserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DenoiserSpec({self})")
    }
}

impl FromStr for DenoiserSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::invalid("denoiser", text, format!("use {}", spec_forms()));
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let takes_param = DenoiserKind::named(kind)
            .map_err(|_| bad())?
            .param
            .is_some();
        let (path, param) = match takes_param {
            true => rest
                .rsplit_once(':')
                .map(|(p, k)| (p, Some(k.to_string())))
                .ok_or_else(bad)?,
            false => (rest, None),
        };
        if path.is_empty() {
            return Err(bad());
        }
        Self::with_param(kind, PathBuf::from(path), param).map_err(|_| bad())
    }
}

impl fmt::Display for DenoiserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name, self.path.display())?;
        match &self.param {
            Some(param) => write!(f, ":{param}"),
            None => Ok(()),
        }
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
            "kde:t.npy:0.5",
            "els:t.npy:5",
            "window-mean:runs/train.npy:runs/schedule.csv",
        ] {
            let spec: DenoiserSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<DenoiserSpec>(&json).unwrap(), spec);
        }
    }

    #[test]
    fn malformed_specs_name_the_accepted_forms() {
        for text in [
            "empirical",
            "empirical:",
            "kde:t.npy",
            "els:t.npy:",
            "nearest:t.npy",
        ] {
            let message = text.parse::<DenoiserSpec>().unwrap_err().to_string();
            assert!(
                message.contains(text) && message.contains("truth:DIR"),
                "{message}"
            );
        }
    }
}
