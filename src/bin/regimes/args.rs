//! The command line's arguments (clap derive), and building a denoiser from them.

use std::path::PathBuf;

use candle_core::{DType, Device};
use clap::{Args, Parser, Subcommand};

use diffusion_regimes::cli::{RunArgs, SweepArgs};
use diffusion_regimes::data::ImageFormat;
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::error::parse_variant;
use diffusion_regimes::experiments::EXPERIMENTS;
use diffusion_regimes::nn::checkpoint::Weights;
use diffusion_regimes::nn::TrainOptions;
use diffusion_regimes::spec::{spec_forms, DenoiserKind, DenoiserSpec, Source};
use diffusion_regimes::sweep::GRID_COLUMNS;
use diffusion_regimes::{Error, Result};

/// f32 or f64, the two dtypes the denoisers compute in.
fn parse_float_dtype(text: &str) -> Result<DType> {
    match text {
        "f32" => Ok(DType::F32),
        "f64" => Ok(DType::F64),
        _ => Err(Error::invalid("--dtype", text, "use f32 or f64")),
    }
}

use crate::calibrate::CalibrateArgs;
use crate::generate::{DenoiseArgs, SampleArgs};
use crate::measure::{GapArgs, JacobianArgs, ScoreKind};
use crate::solve::SolveArgs;

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
    /// The main job: MLPs of three widths trained on MoLRG data at N = 2..1024,
    /// sampled from the same noise as the memorizing denoiser; results and the
    /// regime figures (a)-(d).
    Quickstart(SweepArgs),
    /// Run a registered experiment (the same as its binary in experiments/),
    /// e.g. `regimes run boundaries`; `regimes run list` names them all.
    Run {
        /// The experiment's name, or `list`.
        #[arg(value_parser = experiment_names())]
        name: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Merge the cells of a (sharded) sweep into results.json, results.csv and figures.
    Collect {
        /// The sweep's output folder (holding sweep.toml and cells/).
        out: PathBuf,
        /// Where results and figures go (default: OUT).
        #[arg(long)]
        figures: Option<PathBuf>,
        /// Exit 0 although some cells failed (their training diverged); they
        /// are listed and left out of the results either way.
        #[arg(long)]
        allow_failed: bool,
    },
    /// A training run's losses as figures: the batch loss and the training
    /// and held-out losses on fixed draws (losses.png/.svg), and the same per
    /// noise band (losses_bands.png/.svg), from its metrics.csv.
    Losses {
        /// The run folder (written by `regimes train` or a sweep cell's run/).
        run: PathBuf,
        /// Where the figures go (default: the run folder).
        #[arg(long)]
        figures: Option<PathBuf>,
    },
    /// Samples as a PNG grid in seed order, each row labelled with its sample
    /// indices and optionally above the nearest training image of each sample.
    Grid {
        /// Samples [K, C, H, W] (.npy), e.g. a sweep cell's samples.npy.
        samples: PathBuf,
        /// Training examples (.npy or a data folder) to show nearest images from.
        #[arg(long)]
        train: Option<PathBuf>,
        /// Samples per row.
        #[arg(long, default_value_t = GRID_COLUMNS)]
        columns: usize,
        /// Each pixel is drawn as a ZOOM x ZOOM block.
        #[arg(long, default_value_t = 4)]
        zoom: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Predicted regime levels for training sets of size N drawn from --data:
    /// speciation sigma_S, collapse sigma_C (closed form and excess entropy),
    /// MoLRG samples per dimension (THEORY §8).
    Predict {
        /// Examples (.npy), or a data folder; a folder written by `regimes data`
        /// also gives the closed forms and the MoLRG ratios.
        #[arg(long)]
        data: PathBuf,
        /// Training-set size N.
        #[arg(long)]
        n: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Seed of the Monte-Carlo entropy estimate.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Generate a synthetic data set and save its distribution's parameters,
    /// or import images into the tool's format.
    Data {
        #[command(subcommand)]
        kind: DataKind,
    },
    /// Apply a denoiser D(x; sigma) to every row of an .npy file.
    Denoise(DenoiseArgs),
    /// Train a neural denoiser with the EDM loss on the first N examples of one
    /// seeded permutation of --data (nested subsets), writing a run folder.
    Train(TrainArgs),
    /// Scores of sample files: reproducibility, generalization, memorization (JSON).
    Score {
        #[command(subcommand)]
        kind: ScoreKind,
    },
    /// Relative gap between two denoisers per noise level (JSON).
    Gap(GapArgs),
    /// Jacobian singular values and effective rank of a denoiser (JSON).
    Jacobian(JacobianArgs),
    /// Generate samples by integrating the probability-flow ODE from per-sample seeded noise.
    Sample(SampleArgs),
    /// Reconstruct clean samples from linear measurements (inpainting,
    /// super-resolution, projections) with DPS, range-null projection or the
    /// exact posterior, from per-seed noise.
    Solve(SolveArgs),
    /// Fit a patch denoiser's size k(sigma) to a trained model: per step of
    /// the model's own trajectory, the k whose score is most like the model's.
    CalibratePatches(CalibrateArgs),
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Examples: an .npy file [N, n] or [N, C, H, W] (u8 images map to [-1, 1]),
    /// or a folder written by `regimes data`.
    #[arg(long, required_unless_present = "resume")]
    pub(crate) data: Option<PathBuf>,
    /// Training-set size N.
    #[arg(long, required_unless_present = "resume")]
    pub(crate) n: Option<usize>,
    /// Train class-conditionally (THEORY §10) on these labels, one per
    /// example of --data (.npy of integers or an MNIST IDX1 file); the
    /// classes are 0..(largest label + 1).
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) options: TrainOptions,
    /// Run folder (config.toml, train.npy, metrics.csv, checkpoints/, state.json).
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Continue the run in --out from its latest checkpoint; only --steps and
    /// --device may be given with it (the run's config.toml is authoritative).
    #[arg(long)]
    pub(crate) resume: bool,
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
    /// Images from .npy/.npz, MNIST IDX, CIFAR-10 binary or a PNG folder into
    /// OUT/data.npy, f32 [N, C, H, W] in [-1, 1], with OUT/source.toml.
    Import {
        /// The file (or folder, for cifar10 and png-dir) to read.
        path: PathBuf,
        /// npy, npz, idx (MNIST, optionally gzipped), cifar10 or png-dir.
        #[arg(long, value_parser = parse_variant::<ImageFormat>)]
        format: ImageFormat,
        /// Downsample by area averaging to HxW (or S for SxS), e.g. 28x28 -> 8x8.
        #[arg(long, value_parser = parse_size)]
        size: Option<[usize; 2]>,
        /// Convert RGB to one luma channel.
        #[arg(long)]
        grayscale: bool,
        /// Keep only the first LIMIT images.
        #[arg(long)]
        limit: Option<usize>,
        /// The array to read from an .npz holding several.
        #[arg(long)]
        array: Option<String>,
        /// Class labels, one per source image (MNIST IDX1, gzipped or not,
        /// or .npy integers), written as labels.npy; CIFAR-10 brings its own.
        #[arg(long)]
        labels: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// `HxW` (e.g. `14x14`) or one side `S` for S x S.
fn parse_size(text: &str) -> std::result::Result<[usize; 2], String> {
    let side = |s: &str| s.trim().parse::<usize>().ok().filter(|&v| v > 0);
    let sides = match text.split_once(['x', 'X']) {
        Some((h, w)) => side(h).zip(side(w)),
        None => side(text).map(|s| (s, s)),
    };
    sides.map(|(h, w)| [h, w]).ok_or_else(|| {
        format!("{text:?} is not a size; use HxW such as 14x14, or one side such as 8")
    })
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

#[derive(Args)]
pub(crate) struct DenoiserArgs {
    /// A kind, built from --train, --distribution or --checkpoint, or the
    /// whole spec, e.g. empirical:T.npy.
    #[arg(long, help = denoiser_help())]
    pub(crate) denoiser: String,
    /// Training set, an .npy file of shape [N, n].
    #[arg(long)]
    pub(crate) train: Option<PathBuf>,
    /// Folder written by `regimes data`.
    #[arg(long)]
    pub(crate) distribution: Option<PathBuf>,
    /// Run folder written by `regimes train`.
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Which weights of a trained model: ema (the moving average) or model
    /// (the optimizer's current weights).
    #[arg(long, default_value = "ema", value_parser = parse_variant::<Weights>)]
    pub(crate) weights: Weights,
    /// Precision of the computation and of the written array: f32 or f64.
    #[arg(long, default_value = "f32", value_parser = parse_float_dtype)]
    pub(crate) dtype: DType,
}

impl DenoiserArgs {
    /// The spec these flags name: `--denoiser KIND:PATH`, or a bare kind
    /// whose source is the flag that kind reads (the library builds it).
    pub(crate) fn spec(&self) -> Result<DenoiserSpec> {
        if self.denoiser.contains(':') {
            return self.denoiser.parse();
        }
        let kind = match (self.denoiser.as_str(), self.weights) {
            ("model", Weights::Model) => "model-raw",
            (kind, _) => kind,
        };
        let (flag, path) = match DenoiserKind::named(kind)?.source() {
            Source::TrainingRows => ("--train", &self.train),
            Source::Distribution => ("--distribution", &self.distribution),
            Source::Run => ("--checkpoint", &self.checkpoint),
        };
        let path = path
            .clone()
            .ok_or_else(|| Error::invalid(flag, "missing", "required by this --denoiser"))?;
        DenoiserSpec::new(kind, path)
    }

    pub(crate) fn build(&self) -> Result<Box<dyn Denoiser>> {
        self.spec()?.build(self.dtype, &Device::Cpu)
    }
}

/// `--denoiser`'s help: every registered kind in its accepted form.
fn denoiser_help() -> String {
    format!(
        "A kind, built from --train, --distribution or --checkpoint, or the whole spec: {}",
        spec_forms()
    )
}

/// `regimes run`'s names: every registered experiment, then `list`.
fn experiment_names() -> clap::builder::PossibleValuesParser {
    let names = EXPERIMENTS.iter().map(|e| e.name);
    clap::builder::PossibleValuesParser::new(names.chain(["list"]))
}
