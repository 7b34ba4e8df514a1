//! The command line's arguments (clap derive), and building a denoiser from them.

use std::path::PathBuf;

use candle_core::DType;
use clap::{Args, Parser, Subcommand, ValueEnum};

use diffusion_regimes::data::load_distribution;
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use diffusion_regimes::{Error, Result};

use crate::read_rows;

#[derive(Parser)]
#[command(
    name = "regimes",
    version,
    about = "Memorization and generalization regimes of diffusion models"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// The main job until the regime sweep lands: MoLRG data, then the memorizing,
    /// true and fitted-Gaussian denoisers sampled from the same seeds.
    Demo(DemoArgs),
    /// Generate a synthetic data set and save its distribution's parameters.
    Data {
        #[command(subcommand)]
        kind: DataKind,
    },
    /// Apply a denoiser D(x; sigma) to every row of an .npy file.
    Denoise {
        #[command(flatten)]
        denoiser: DenoiserArgs,
        #[arg(long, allow_negative_numbers = true)]
        sigma: f64,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate samples by integrating the probability-flow ODE from per-sample seeded noise.
    Sample {
        #[command(flatten)]
        denoiser: DenoiserArgs,
        /// Sample indices j, e.g. 0-255 or 0,3,7; sample j's noise depends only on (seed, j).
        #[arg(long, default_value = "0-63")]
        seeds: String,
        /// The run's seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = SamplerName::Heun)]
        sampler: SamplerName,
        #[arg(long, default_value_t = 18)]
        steps: usize,
        #[arg(long, default_value_t = 0.002)]
        sigma_min: f64,
        #[arg(long, default_value_t = 80.0)]
        sigma_max: f64,
        #[arg(long, default_value_t = 7.0)]
        rho: f64,
        /// Standard-normal initial noise, one row per seed (scaled by sigma-max here).
        #[arg(long)]
        noise: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Training-set size N.
    #[arg(long, default_value_t = 64)]
    pub(crate) n: usize,
    /// Number of samples per denoiser.
    #[arg(long, default_value_t = 256)]
    pub(crate) samples: u64,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[arg(long, default_value = "runs/demo")]
    pub(crate) out: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum DataKind {
    /// Mixture of low-rank Gaussians: K orthogonal subspaces of dimension --rank.
    Molrg {
        #[arg(long)]
        ambient: usize,
        #[arg(long)]
        components: usize,
        #[arg(long)]
        rank: usize,
        /// Isotropic noise variance added to every component.
        #[arg(long, default_value_t = 0.0)]
        floor: f64,
        #[command(flatten)]
        common: DataArgs,
    },
    /// Isotropic Gaussian mixture with random means.
    Gmm {
        #[arg(long)]
        ambient: usize,
        #[arg(long)]
        components: usize,
        /// Means are drawn from N(0, mean_scale^2 I).
        #[arg(long, default_value_t = 1.0)]
        mean_scale: f64,
        /// Within-component standard deviation.
        #[arg(long, default_value_t = 0.1)]
        std: f64,
        #[command(flatten)]
        common: DataArgs,
    },
    /// A single Gaussian, isotropic or with a power-law spectrum.
    Gaussian {
        #[arg(long)]
        ambient: usize,
        /// Variance of the isotropic Gaussian; with --exponent, the top eigenvalue.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Power-law spectrum lambda_i = scale * i^(-exponent) in a random basis.
        #[arg(long)]
        exponent: Option<f64>,
        #[command(flatten)]
        common: DataArgs,
    },
}

#[derive(Args)]
pub(crate) struct DataArgs {
    /// Number of rows to draw.
    #[arg(long)]
    pub(crate) n: usize,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DenoiserName {
    /// The memorizing optimal denoiser of --train.
    Empirical,
    /// The Gaussian denoiser fitted to --train.
    Gaussian,
    /// The exact denoiser of the distribution saved in --distribution.
    Truth,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SamplerName {
    Euler,
    Heun,
    Ddim,
    EdmStochastic,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DtypeName {
    F32,
    F64,
}

#[derive(Args)]
pub(crate) struct DenoiserArgs {
    #[arg(long, value_enum)]
    pub(crate) denoiser: DenoiserName,
    /// Training set, an .npy file of shape [N, n].
    #[arg(long)]
    pub(crate) train: Option<PathBuf>,
    /// Folder written by `regimes data`.
    #[arg(long)]
    pub(crate) distribution: Option<PathBuf>,
    /// Precision of the computation and of the written array.
    #[arg(long, value_enum, default_value_t = DtypeName::F32)]
    pub(crate) dtype: DtypeName,
}

impl DenoiserArgs {
    pub(crate) fn dtype(&self) -> DType {
        match self.dtype {
            DtypeName::F32 => DType::F32,
            DtypeName::F64 => DType::F64,
        }
    }

    pub(crate) fn build(&self) -> Result<Box<dyn Denoiser>> {
        let need = |path: &Option<PathBuf>, flag: &str| {
            path.clone()
                .ok_or_else(|| Error::invalid(flag, "missing", "required by this --denoiser"))
        };
        Ok(match self.denoiser {
            DenoiserName::Empirical => {
                let train = read_rows(&need(&self.train, "--train")?)?.to_dtype(self.dtype())?;
                Box::new(EmpiricalDenoiser::new(&train)?)
            }
            DenoiserName::Gaussian => Box::new(GaussianDenoiser::fit(&read_rows(&need(
                &self.train,
                "--train",
            )?)?)?),
            DenoiserName::Truth => Box::new(load_distribution(&need(
                &self.distribution,
                "--distribution",
            )?)?),
        })
    }
}
