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
use crate::data::{data_file, examples_in};
use crate::denoise::Mixture;
use crate::denoise::{
    Denoiser, EmpiricalDenoiser, GaussianDenoiser, KdeDenoiser, PatchDenoiser, PatchKind, PatchSize,
};
use crate::framework::Framework;
use crate::nn::checkpoint::{load_model, read_state, Weights};
use crate::{Error, Result};

mod class;

pub use class::{class_denoiser, class_denoiser_from};

/// What a kind of denoiser is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Training examples: an .npy file `[N, n]`, or images `[N, C, H, W]`
    /// (or a folder of `regimes data` holding data.npy); in Python, an array.
    TrainingRows,
    /// A distribution folder saved by `regimes data`; in Python, a
    /// synthetic distribution.
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

/// How a kind is built, by what it is built from.
#[derive(Clone, Copy)]
pub enum Build {
    /// From training examples (rows `[N, n]`, or images `[N, C, H, W]`,
    /// which the row kinds flatten), the parameter (empty if none) and the
    /// dtype an analytic denoiser computes in.
    Examples(fn(&Tensor, &str, DType) -> Result<Box<dyn Denoiser>>),
    /// From the exact mixture of a distribution.
    Distribution(fn(Mixture) -> Result<Box<dyn Denoiser>>),
    /// From a run folder, the network on the device given.
    Run(fn(&Path, &Device) -> Result<Box<dyn Denoiser>>),
}

/// One kind of denoiser: its name in specs, the placeholder of the
/// parameter after the path (`K`, `S`) for the kinds that take one, and how
/// it is built.
pub struct DenoiserKind {
    pub name: &'static str,
    pub param: Option<&'static str>,
    pub build: Build,
}

/// What a denoiser is built from, in hand: training examples, a
/// distribution's mixture, or a run folder.
pub enum Input<'a> {
    Examples(Tensor),
    Distribution(Mixture),
    Run(&'a Path),
}

impl DenoiserKind {
    /// Builds this kind from `input` (what [`Self::source`] says it takes),
    /// with its parameter (empty if it takes none); analytic denoisers
    /// compute in `dtype`, networks run on `device`.
    pub fn build_from(
        &self,
        input: Input<'_>,
        param: &str,
        dtype: DType,
        device: &Device,
    ) -> Result<Box<dyn Denoiser>> {
        if let (Some(placeholder), true) = (self.param, param.is_empty()) {
            return Err(Error::invalid(
                format!("parameter {placeholder} of {}", self.name),
                "missing",
                spec_forms(),
            ));
        }
        match (self.build, input) {
            (Build::Examples(build), Input::Examples(x)) => build(&x, param, dtype),
            (Build::Distribution(build), Input::Distribution(m)) => build(m),
            (Build::Run(build), Input::Run(path)) => build(path, device),
            _ => Err(Error::invalid(
                "denoiser",
                self.name,
                format!(
                    "is built from {}",
                    match self.source() {
                        Source::TrainingRows => "training examples",
                        Source::Distribution => "a distribution",
                        Source::Run => "a run folder",
                    }
                ),
            )),
        }
    }

    /// What the kind is built from.
    pub fn source(&self) -> Source {
        match self.build {
            Build::Examples(_) => Source::TrainingRows,
            Build::Distribution(_) => Source::Distribution,
            Build::Run(_) => Source::Run,
        }
    }

    /// The kind called `name`.
    pub fn named(name: &str) -> Result<&'static DenoiserKind> {
        DENOISERS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::invalid("denoiser", name, format!("use {}", spec_forms())))
    }
}

/// Examples `[N, ...]` as rows `[N, n]`.
fn rows(examples: &Tensor) -> Result<Tensor> {
    Ok(examples.flatten_from(1)?)
}

/// A patch denoiser of kind `kind` (THEORY §12) over images [N, C, H, W]
/// with patch size `k` (an odd number or a schedule file).
fn patches(kind: PatchKind, images: &Tensor, k: &str, dtype: DType) -> Result<Box<dyn Denoiser>> {
    if images.rank() != 4 {
        return Err(Error::shape(
            "patch denoiser training images",
            "[N, C, H, W]",
            format!("{:?}", images.dims()),
        ));
    }
    let images = images.to_dtype(dtype)?;
    Ok(Box::new(PatchDenoiser::new(
        kind,
        &images,
        PatchSize::parse(k)?,
    )?))
}

/// Every kind of denoiser a spec can name: a new kind is its file plus one
/// line here.
pub const DENOISERS: &[DenoiserKind] = &[
    // The memorizing optimal denoiser of the rows of T (THEORY §4).
    DenoiserKind {
        name: "empirical",
        param: None,
        build: Build::Examples(|x, _, dtype| {
            Ok(Box::new(EmpiricalDenoiser::new(
                &rows(x)?.to_dtype(dtype)?,
            )?))
        }),
    },
    // The Gaussian denoiser fitted to the rows of T (THEORY §5).
    DenoiserKind {
        name: "gaussian",
        param: None,
        build: Build::Examples(|x, _, _| Ok(Box::new(GaussianDenoiser::fit(&rows(x)?)?))),
    },
    // The exact denoiser of a saved distribution (THEORY §6).
    DenoiserKind {
        name: "truth",
        param: None,
        build: Build::Distribution(|mixture| Ok(Box::new(mixture))),
    },
    // A trained network at its latest checkpoint: the EMA weights...
    DenoiserKind {
        name: "model",
        param: None,
        build: Build::Run(|run, device| Ok(Box::new(load_model(run, Weights::Ema, device)?))),
    },
    // ...or the optimizer's own.
    DenoiserKind {
        name: "model-raw",
        param: None,
        build: Build::Run(|run, device| Ok(Box::new(load_model(run, Weights::Model, device)?))),
    },
    // The kernel-smoothed empirical denoiser, bandwidth S (THEORY §12).
    DenoiserKind {
        name: "kde",
        param: Some("S"),
        build: Build::Examples(|x, s, dtype| {
            let bandwidth = s
                .parse()
                .map_err(|_| Error::invalid("kde bandwidth", s, "must be a number >= 0"))?;
            Ok(Box::new(KdeDenoiser::new(
                &rows(x)?.to_dtype(dtype)?,
                bandwidth,
            )?))
        }),
    },
    // The patch closed forms of images [N, C, H, W], patch size K (THEORY §12).
    DenoiserKind {
        name: "local",
        param: Some("K"),
        build: Build::Examples(|x, k, dtype| patches(PatchKind::Local, x, k, dtype)),
    },
    DenoiserKind {
        name: "els",
        param: Some("K"),
        build: Build::Examples(|x, k, dtype| patches(PatchKind::Equivariant, x, k, dtype)),
    },
    DenoiserKind {
        name: "els-boundary",
        param: Some("K"),
        build: Build::Examples(|x, k, dtype| patches(PatchKind::EquivariantBoundary, x, k, dtype)),
    },
    DenoiserKind {
        name: "window-mean",
        param: Some("K"),
        build: Build::Examples(|x, k, dtype| patches(PatchKind::WindowMean, x, k, dtype)),
    },
];

/// The training examples at `path` (an .npy file, or a `regimes data`
/// folder) as the denoisers read them: float rows `[N, n]` or images
/// `[N, C, H, W]` in their own dtype; anything else as training reads it
/// (`[N, H, W]` as one channel, bytes mapped to [-1, 1]), converted once
/// into `dtype`.
pub fn training_examples(path: &Path, dtype: DType) -> Result<Tensor> {
    let file = data_file(path);
    let t = read_npy(&file)?;
    match (t.rank(), t.dtype()) {
        (2 | 4, d) if d != DType::U8 => Ok(t),
        _ => examples_in(t, &file, dtype),
    }
}

/// The rows of a training set ([`Source::TrainingRows`]), flattened from
/// [`training_examples`].
pub fn training_rows(path: &Path, dtype: DType) -> Result<Tensor> {
    rows(&training_examples(path, dtype)?)
}

/// Training images [N, C, H, W] ([`training_examples`]), for the patch denoisers.
pub fn training_images(path: &Path, dtype: DType) -> Result<Tensor> {
    let images = training_examples(path, dtype)?;
    match images.rank() {
        4 => Ok(images),
        _ => Err(Error::format(
            &data_file(path),
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
            Some(param) => format!("{}:{}:{param}", k.name, k.source().placeholder()),
            None => format!("{}:{}", k.name, k.source().placeholder()),
        })
        .collect();
    forms.join(", ")
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
