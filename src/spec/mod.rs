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

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::load_distribution;
use crate::data::npy::read_npy;
use crate::data::{data_file, examples_from};
use crate::denoise::{
    Denoiser, EmpiricalDenoiser, GaussianDenoiser, KdeDenoiser, PatchDenoiser, PatchKind, PatchSize,
};
use crate::framework::Framework;
use crate::nn::checkpoint::{load_model, read_state, Weights};
use crate::{Error, Result};

mod class;

pub use class::class_denoiser;

/// What a kind of denoiser is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Training rows: an .npy file `[N, n]`, or images `[N, C, H, W]` (or a
    /// folder of `regimes data` holding data.npy) taken as flattened rows.
    TrainingRows,
    /// A distribution folder saved by `regimes data`.
    Distribution,
    /// A run folder written by `regimes train`.
    Run,
}

impl Source {
    /// The placeholder for the path in the accepted forms.
    fn placeholder(self) -> &'static str {
        match self {
            Source::TrainingRows => "T.npy",
            Source::Distribution => "DIR",
            Source::Run => "RUN_DIR",
        }
    }
}

/// One kind of denoiser: its name in specs, what it is built from, how.
pub struct DenoiserKind {
    pub name: &'static str,
    pub source: Source,
    /// The placeholder of the parameter after the path (`K`, `S`), for the
    /// kinds that take one.
    pub param: Option<&'static str>,
    /// Builds it from a path and the parameter (empty if none); analytic
    /// ones compute in the dtype given (a network keeps its own), networks
    /// run on the device given.
    build: Build,
}

/// How a kind is built: (path, parameter, dtype, device).
type Build = fn(&Path, &str, DType, &Device) -> Result<Box<dyn Denoiser>>;

/// A patch denoiser of kind `kind` (THEORY §12) over the images at `train`
/// with patch size `k` (an odd number or a schedule file).
fn patches(kind: PatchKind, train: &Path, k: &str, dtype: DType) -> Result<Box<dyn Denoiser>> {
    let images = training_images(train)?.to_dtype(dtype)?;
    Ok(Box::new(PatchDenoiser::new(
        kind,
        &images,
        PatchSize::parse(k)?,
    )?))
}

/// Every kind of denoiser a spec can name.
pub const DENOISERS: &[DenoiserKind] = &[
    // The memorizing optimal denoiser of the rows of T (THEORY §4).
    DenoiserKind {
        name: "empirical",
        source: Source::TrainingRows,
        param: None,
        build: |train, _, dtype, _| {
            let rows = training_rows(train)?.to_dtype(dtype)?;
            Ok(Box::new(EmpiricalDenoiser::new(&rows)?))
        },
    },
    // The Gaussian denoiser fitted to the rows of T (THEORY §5).
    DenoiserKind {
        name: "gaussian",
        source: Source::TrainingRows,
        param: None,
        build: |train, _, _, _| Ok(Box::new(GaussianDenoiser::fit(&training_rows(train)?)?)),
    },
    // The exact denoiser of a saved distribution (THEORY §6).
    DenoiserKind {
        name: "truth",
        source: Source::Distribution,
        param: None,
        build: |dir, _, _, _| Ok(Box::new(load_distribution(dir)?)),
    },
    // A trained network at its latest checkpoint: the EMA weights...
    DenoiserKind {
        name: "model",
        source: Source::Run,
        param: None,
        build: |run, _, _, device| Ok(Box::new(load_model(run, Weights::Ema, device)?)),
    },
    // ...or the optimizer's own.
    DenoiserKind {
        name: "model-raw",
        source: Source::Run,
        param: None,
        build: |run, _, _, device| Ok(Box::new(load_model(run, Weights::Model, device)?)),
    },
    // The kernel-smoothed empirical denoiser, bandwidth S (THEORY §12).
    DenoiserKind {
        name: "kde",
        source: Source::TrainingRows,
        param: Some("S"),
        build: |train, s, dtype, _| {
            let bandwidth = s
                .parse()
                .map_err(|_| Error::invalid("kde bandwidth", s, "must be a number >= 0"))?;
            let rows = training_rows(train)?.to_dtype(dtype)?;
            Ok(Box::new(KdeDenoiser::new(&rows, bandwidth)?))
        },
    },
    // The patch closed forms of images [N, C, H, W], patch size K (THEORY §12).
    DenoiserKind {
        name: "local",
        source: Source::TrainingRows,
        param: Some("K"),
        build: |train, k, dtype, _| patches(PatchKind::Local, train, k, dtype),
    },
    DenoiserKind {
        name: "els",
        source: Source::TrainingRows,
        param: Some("K"),
        build: |train, k, dtype, _| patches(PatchKind::Equivariant, train, k, dtype),
    },
    DenoiserKind {
        name: "els-boundary",
        source: Source::TrainingRows,
        param: Some("K"),
        build: |train, k, dtype, _| patches(PatchKind::EquivariantBoundary, train, k, dtype),
    },
    DenoiserKind {
        name: "window-mean",
        source: Source::TrainingRows,
        param: Some("K"),
        build: |train, k, dtype, _| patches(PatchKind::WindowMean, train, k, dtype),
    },
];

/// The rows of a training set ([`Source::TrainingRows`]): a float array
/// [N, n] in its own dtype, or examples as training reads them (images, u8
/// mapped to [-1, 1]) flattened to [N, C H W].
pub fn training_rows(path: &Path) -> Result<Tensor> {
    let file = data_file(path);
    let t = read_npy(&file)?;
    match t.rank() == 2 && t.dtype() != DType::U8 {
        true => Ok(t),
        false => Ok(examples_from(t, &file)?.flatten_from(1)?),
    }
}

/// Training images [N, C, H, W] (a float array in its own dtype, or
/// examples as training reads them), for the patch denoisers.
pub fn training_images(path: &Path) -> Result<Tensor> {
    let file = data_file(path);
    let t = read_npy(&file)?;
    let images = match t.rank() == 4 && t.dtype() != DType::U8 {
        true => t,
        false => examples_from(t, &file)?,
    };
    match images.rank() {
        4 => Ok(images),
        _ => Err(Error::format(
            &file,
            format!(
                "patch denoisers need images [N, C, H, W], got {:?}",
                images.dims()
            ),
        )),
    }
}

/// The accepted forms, for error messages: `empirical:T.npy, ..., model-raw:RUN_DIR`.
pub fn spec_forms() -> String {
    let forms: Vec<String> = DENOISERS
        .iter()
        .map(|k| match k.param {
            Some(param) => format!("{}:{}:{param}", k.name, k.source.placeholder()),
            None => format!("{}:{}", k.name, k.source.placeholder()),
        })
        .collect();
    forms.join(", ")
}

impl DenoiserKind {
    /// The kind called `name`.
    pub fn named(name: &str) -> Result<&'static DenoiserKind> {
        DENOISERS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::invalid("denoiser", name, format!("use {}", spec_forms())))
    }
}

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
        (self.kind.build)(
            &self.path,
            self.param.as_deref().unwrap_or(""),
            dtype,
            device,
        )
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
        match self.kind.source {
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
