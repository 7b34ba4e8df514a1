//! The registry of denoiser kinds: each kind's name, what it is built from
//! and how (the one factory: `DenoiserKind::build_from`). A new kind is its
//! file implementing `Denoiser` plus one line in [`DENOISERS`].

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::denoise::{
    Denoiser, EmpiricalDenoiser, GaussianDenoiser, KdeDenoiser, Mixture, PatchDenoiser, PatchKind,
    PatchSize,
};
use crate::nn::checkpoint::{load_model, Weights};
use crate::{Error, Result};

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
    pub(super) fn placeholder(self) -> &'static str {
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
pub(super) fn rows(examples: &Tensor) -> Result<Tensor> {
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
