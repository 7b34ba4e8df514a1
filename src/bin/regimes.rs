//! `regimes`: the command-line interface, a thin clap layer over the library.
//! Every failure prints one line naming the problem and exits with code 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use clap::{Args, Parser, Subcommand, ValueEnum};

use diffusion_regimes::data::npy::{read_npy, write_npy};
use diffusion_regimes::data::{load_distribution, Spectrum, Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::{Denoiser, EmpiricalDenoiser, GaussianDenoiser};
use diffusion_regimes::error::check_sigma;
use diffusion_regimes::metrics::nearest_two;
use diffusion_regimes::sample::{generate, initial_noise, sample, Churn, Method, Schedule};
use diffusion_regimes::{Error, Result};

#[derive(Parser)]
#[command(
    name = "regimes",
    version,
    about = "Memorization and generalization regimes of diffusion models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct DemoArgs {
    /// Training-set size N.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Number of samples per denoiser.
    #[arg(long, default_value_t = 256)]
    samples: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum DataKind {
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
struct DataArgs {
    /// Number of rows to draw.
    #[arg(long)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum DenoiserName {
    /// The memorizing optimal denoiser of --train.
    Empirical,
    /// The Gaussian denoiser fitted to --train.
    Gaussian,
    /// The exact denoiser of the distribution saved in --distribution.
    Truth,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplerName {
    Euler,
    Heun,
    Ddim,
    EdmStochastic,
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeName {
    F32,
    F64,
}

#[derive(Args)]
struct DenoiserArgs {
    #[arg(long, value_enum)]
    denoiser: DenoiserName,
    /// Training set, an .npy file of shape [N, n].
    #[arg(long)]
    train: Option<PathBuf>,
    /// Folder written by `regimes data`.
    #[arg(long)]
    distribution: Option<PathBuf>,
    /// Precision of the computation and of the written array.
    #[arg(long, value_enum, default_value_t = DtypeName::F32)]
    dtype: DtypeName,
}

impl DenoiserArgs {
    fn dtype(&self) -> DType {
        match self.dtype {
            DtypeName::F32 => DType::F32,
            DtypeName::F64 => DType::F64,
        }
    }

    fn build(&self) -> Result<Box<dyn Denoiser>> {
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

/// A 2-D float array [rows, n] from an .npy file.
fn read_rows(path: &Path) -> Result<Tensor> {
    let t = read_npy(path)?;
    if t.rank() != 2 || t.dtype() == DType::U8 {
        return Err(Error::format(
            path,
            format!(
                "expected a 2-D float array [rows, n], got {:?} of shape {:?}",
                t.dtype(),
                t.dims()
            ),
        ));
    }
    Ok(t)
}

/// Rows of `path` whose width must equal the denoiser's dimension.
fn read_rows_of_dim(path: &Path, dim: usize) -> Result<Tensor> {
    let t = read_rows(path)?;
    if t.dims()[1] != dim {
        return Err(Error::format(
            path,
            format!(
                "rows have dimension {} but the denoiser's data have dimension {dim}",
                t.dims()[1]
            ),
        ));
    }
    Ok(t)
}

/// "0-255", "3" or "0,5,9-11" as a list of sample indices.
fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let bad = || Error::invalid("--seeds", text, "use a list like 0-255 or 0,3,7");
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let parse = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return Err(bad());
                }
                seeds.extend(a..=b);
            }
            None => seeds.push(parse(part)?),
        }
    }
    Ok(seeds)
}

fn make_data(kind: DataKind) -> Result<()> {
    let (spec, common) = match kind {
        DataKind::Molrg {
            ambient,
            components,
            rank,
            floor,
            common,
        } => (
            SyntheticSpec::Molrg {
                ambient,
                ranks: vec![rank; components],
                floor,
            },
            common,
        ),
        DataKind::Gmm {
            ambient,
            components,
            mean_scale,
            std,
            common,
        } => (
            SyntheticSpec::Gmm {
                ambient,
                components,
                mean_scale,
                std,
            },
            common,
        ),
        DataKind::Gaussian {
            ambient,
            scale,
            exponent,
            common,
        } => {
            let spectrum = match exponent {
                None => Spectrum::Isotropic { variance: scale },
                Some(exponent) => Spectrum::PowerLaw { scale, exponent },
            };
            (SyntheticSpec::Gaussian { ambient, spectrum }, common)
        }
    };
    if common.n == 0 {
        return Err(Error::invalid("--n", 0, "must be at least 1"));
    }
    let dist = Synthetic::new(spec, common.seed)?;
    let data = dist.sample(common.n)?;
    write_npy(&common.out.join("data.npy"), &data, DType::F32)?;
    dist.save(&common.out)?;
    eprintln!(
        "wrote {} rows to {}",
        common.n,
        common.out.join("data.npy").display()
    );
    Ok(())
}

/// Samples the three denoisers of one training set from the same noise and
/// reports how many samples reproduce a training point (THEORY §7 ratio criterion).
fn demo(args: DemoArgs) -> Result<()> {
    let spec = SyntheticSpec::Molrg {
        ambient: 48,
        ranks: vec![7, 7],
        floor: 0.0,
    };
    let dist = Synthetic::new(spec, args.seed)?;
    let train = dist.sample(args.n)?;
    write_npy(&args.out.join("data.npy"), &train, DType::F32)?;
    dist.save(&args.out)?;
    let empirical = EmpiricalDenoiser::new(&train)?;
    let fitted = GaussianDenoiser::fit(&train)?;
    let denoisers: [(&str, &dyn Denoiser); 3] = [
        ("empirical", &empirical),
        ("truth", &dist.mixture),
        ("gaussian", &fitted),
    ];
    let indices: Vec<u64> = (0..args.samples).collect();
    println!("MoLRG n = 48, two rank-7 components, N = {} training points, {} samples each (Heun, 18 steps)", args.n, args.samples);
    println!(
        "{:<10} {:>22} {:>26}",
        "denoiser", "memorized (d1/d2<1/3)", "median distance to train"
    );
    for (name, d) in denoisers {
        let samples = generate(
            d,
            args.seed,
            &indices,
            DType::F64,
            &Device::Cpu,
            &Schedule::default(),
            &Method::Heun,
            None,
        )?;
        write_npy(
            &args.out.join(format!("samples-{name}.npy")),
            &samples,
            DType::F32,
        )?;
        let nn = nearest_two(&samples, &train, 4096)?;
        let mut d1 = nn.nearest_distance.clone();
        d1.sort_by(f64::total_cmp);
        println!(
            "{name:<10} {:>22.3} {:>26.4}",
            nn.ratio_memorized_fraction(),
            d1[d1.len() / 2]
        );
    }
    println!("wrote data and samples to {}", args.out.display());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => demo(args),
        Command::Data { kind } => make_data(kind),
        Command::Denoise {
            denoiser,
            sigma,
            input,
            out,
        } => {
            check_sigma(sigma)?;
            let d = denoiser.build()?;
            let x = read_rows_of_dim(&input, d.dim())?.to_dtype(denoiser.dtype())?;
            write_npy(&out, &d.denoise(&x, sigma)?, denoiser.dtype())
        }
        Command::Sample {
            denoiser,
            seeds,
            seed,
            sampler,
            steps,
            sigma_min,
            sigma_max,
            rho,
            noise,
            out,
        } => {
            let indices = parse_seeds(&seeds)?;
            let schedule = Schedule {
                steps,
                sigma_min,
                sigma_max,
                rho,
            };
            let sigmas = schedule.sigmas()?;
            let d = denoiser.build()?;
            let dtype = denoiser.dtype();
            let (mut z, mut streams) = initial_noise(seed, &indices, d.dim(), dtype, &Device::Cpu)?;
            if let Some(path) = noise {
                z = read_rows_of_dim(&path, d.dim())?.to_dtype(dtype)?;
                if z.dims()[0] != indices.len() {
                    return Err(Error::format(
                        &path,
                        format!(
                            "has {} rows but --seeds lists {} samples",
                            z.dims()[0],
                            indices.len()
                        ),
                    ));
                }
            }
            let method = match sampler {
                SamplerName::Euler => Method::Euler,
                SamplerName::Heun => Method::Heun,
                SamplerName::Ddim => Method::Ddim,
                SamplerName::EdmStochastic => Method::EdmStochastic(Churn::default()),
            };
            let x = sample(
                d.as_ref(),
                &(z * sigma_max)?,
                &sigmas,
                &method,
                &mut streams,
                None,
            )?;
            write_npy(&out, &x, dtype)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
