//! `regimes score`, `regimes gap` and `regimes jacobian`: the metrics of
//! THEORY §7 on files, written as JSON to stdout or --out.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use clap::{Args, Subcommand};
use serde_json::json;

use diffusion_regimes::data::npy::read_rows;
use diffusion_regimes::data::npz::read_npz;
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::error::{check_sigma, parse_variant};
use diffusion_regimes::io::write_atomic;
use diffusion_regimes::metrics::{
    denoiser_gap, effective_rank, generalization, ratio_memorization, reproducibility,
    singular_values, Bootstrap, Similarity,
};
use diffusion_regimes::spec::DenoiserSpec;
use diffusion_regimes::{Error, Result};

#[derive(Subcommand)]
pub(crate) enum ScoreKind {
    /// Reproducibility RP of two sample sets whose rows are paired by seed.
    Rp {
        #[arg(long)]
        a: PathBuf,
        #[arg(long)]
        b: PathBuf,
        /// Features of A's rows instead of the raw vectors: F.npy or F.npz:name.
        #[arg(long)]
        features_a: Option<String>,
        #[arg(long)]
        features_b: Option<String>,
        #[command(flatten)]
        matching: MatchArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Generalization GL (best similarity to any training point <= threshold) and memorization 1 - GL.
    Gl {
        #[command(flatten)]
        sets: SampleSets,
        #[command(flatten)]
        matching: MatchArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Distance-ratio memorization: nearest / second-nearest training distance < 1/3.
    Ratio {
        #[command(flatten)]
        sets: SampleSets,
        #[command(flatten)]
        report: ReportArgs,
    },
}

#[derive(Args)]
pub(crate) struct SampleSets {
    #[arg(long)]
    samples: PathBuf,
    #[arg(long)]
    train: PathBuf,
    /// Features of the samples instead of the raw vectors: F.npy or F.npz:name.
    #[arg(long)]
    features_samples: Option<String>,
    #[arg(long)]
    features_train: Option<String>,
}

#[derive(Args)]
pub(crate) struct MatchArgs {
    /// cosine, centered-cosine or normalized-l2.
    #[arg(long, default_value = "cosine", value_parser = parse_variant::<Similarity>)]
    similarity: Similarity,
    /// tau: a pair matches when similarity > tau (for normalized-l2: distance < tau).
    #[arg(long, default_value_t = 0.6)]
    threshold: f64,
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Bootstrap resamples for the 95% interval.
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON file to write instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl MatchArgs {
    fn similarity(&self) -> Result<Similarity> {
        if !self.threshold.is_finite() {
            return Err(Error::invalid(
                "--threshold",
                self.threshold,
                "must be finite",
            ));
        }
        Ok(self.similarity)
    }
}

fn emit(value: serde_json::Value, out: &Option<PathBuf>) -> Result<()> {
    let text = serde_json::to_string_pretty(&value).expect("JSON serializes") + "\n";
    match out {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// The rows to compare for `rows_path`: its raw vectors, or the features in
/// `features` (F.npy or F.npz:name), which must have one row per sample.
fn features(rows_path: &Path, features: &Option<String>) -> Result<(Tensor, String)> {
    let rows = read_rows(rows_path)?;
    let Some(spec) = features else {
        return Ok((rows, "raw".into()));
    };
    let f = match spec.split_once(".npz:") {
        Some((file, name)) => read_npz(Path::new(&format!("{file}.npz")), Some(name))?,
        None => read_rows(Path::new(spec))?,
    };
    if f.rank() != 2 || f.dim(0)? != rows.dim(0)? {
        return Err(Error::format(
            Path::new(spec),
            format!(
                "features have shape {:?} but {} has {} rows",
                f.dims(),
                rows_path.display(),
                rows.dim(0)?
            ),
        ));
    }
    Ok((f.to_dtype(DType::F64)?, spec.clone()))
}

pub(crate) fn score(kind: ScoreKind) -> Result<()> {
    let boot = |r: &ReportArgs| Bootstrap {
        resamples: r.resamples,
        seed: r.seed,
    };
    match kind {
        ScoreKind::Rp {
            a,
            b,
            features_a,
            features_b,
            matching,
            report,
        } => {
            let (fa, name_a) = features(&a, &features_a)?;
            let (fb, name_b) = features(&b, &features_b)?;
            if fa.dims() != fb.dims() {
                return Err(Error::shape(
                    "score rp: A and B rows (paired by seed)",
                    format!("{:?}", fa.dims()),
                    format!("{:?}", fb.dims()),
                ));
            }
            let label = format!("A: {name_a}; B: {name_b}");
            let s = reproducibility(
                &fa,
                &fb,
                matching.similarity()?,
                matching.threshold,
                &label,
                boot(&report),
            )?;
            emit(json!(s), &report.out)
        }
        ScoreKind::Gl {
            sets,
            matching,
            report,
        } => {
            let (x, y, label) = sample_sets(&sets)?;
            let scores = generalization(
                &x,
                &y,
                matching.similarity()?,
                matching.threshold,
                &label,
                boot(&report),
            )?;
            emit(json!(scores), &report.out)
        }
        ScoreKind::Ratio { sets, report } => {
            let (x, y, label) = sample_sets(&sets)?;
            emit(
                json!(ratio_memorization(&x, &y, &label, boot(&report))?),
                &report.out,
            )
        }
    }
}

fn sample_sets(sets: &SampleSets) -> Result<(Tensor, Tensor, String)> {
    let (x, fx) = features(&sets.samples, &sets.features_samples)?;
    let (y, fy) = features(&sets.train, &sets.features_train)?;
    if x.dim(1)? != y.dim(1)? {
        return Err(Error::shape(
            "samples vs training set",
            format!("[M, {}]", y.dim(1)?),
            format!("{:?}", x.dims()),
        ));
    }
    Ok((x, y, format!("samples: {fx}; train: {fy}")))
}

/// A denoiser named as `kind:path` ([`DenoiserSpec`]), computing in f64.
pub(crate) fn denoiser_from_spec(spec: &str) -> Result<Box<dyn Denoiser>> {
    spec.parse::<DenoiserSpec>()?
        .build(DType::F64, &candle_core::Device::Cpu)
}

/// "0.01,0.1,1" as valid noise levels.
pub(crate) fn parse_sigmas(text: &str) -> Result<Vec<f64>> {
    let sigmas = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| Error::invalid("--sigmas", text, "use a list like 0.01,0.1,1,10"))
        })
        .collect::<Result<Vec<_>>>()?;
    sigmas.iter().try_for_each(|&s| check_sigma(s))?;
    Ok(sigmas)
}

#[derive(Args)]
pub(crate) struct GapArgs {
    /// Denoiser a (the numerator), e.g. model:runs/mlp-n64.
    #[arg(long)]
    a: String,
    /// Reference denoiser(s) b; repeat --b to compare a with several at once,
    /// e.g. --b empirical:T.npy --b gaussian:T.npy --b truth:DIR.
    #[arg(long, required = true)]
    b: Vec<String>,
    #[arg(long, default_value = "0.01,0.1,1,10")]
    sigmas: String,
    /// Clean points y (e.g. the training set); x = y + sigma z.
    #[arg(long, required_unless_present = "distribution")]
    points: Option<PathBuf>,
    /// Draw --fresh clean points from this distribution folder instead.
    #[arg(long, conflicts_with = "points")]
    distribution: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    fresh: usize,
    /// Seed of z (row i from stream (seed, Sample, i)).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn gap(args: GapArgs) -> Result<()> {
    let sigmas = parse_sigmas(&args.sigmas)?;
    let a = denoiser_from_spec(&args.a)?;
    let (y, points) = match (&args.points, &args.distribution) {
        (Some(p), _) => (read_rows(p)?, p.display().to_string()),
        (None, Some(dir)) => {
            let dist = diffusion_regimes::data::Synthetic::load(dir)?;
            (
                dist.sample_fresh(args.fresh)?,
                format!("{} fresh draws from {}", args.fresh, dir.display()),
            )
        }
        (None, None) => unreachable!("clap requires --points or --distribution"),
    };
    let mut gaps = serde_json::Map::new();
    for spec in &args.b {
        let b = denoiser_from_spec(spec)?;
        gaps.insert(
            spec.clone(),
            json!(denoiser_gap(
                a.as_ref(),
                b.as_ref(),
                &y,
                &sigmas,
                args.seed
            )?),
        );
    }
    emit(
        json!({"gap": "E|D_a - D_b|^2 / E|D_b|^2", "a": args.a, "points": points, "m": y.dim(0)?, "seed": args.seed, "sigmas": sigmas, "gaps_by_b": gaps}),
        &args.out,
    )
}

#[derive(Args)]
pub(crate) struct JacobianArgs {
    /// e.g. empirical:T.npy, truth:DIR, model:RUN_DIR.
    #[arg(long)]
    denoiser: String,
    /// Points x, one per row.
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "0.01,0.1,1,10")]
    sigmas: String,
    /// Fraction of the Frobenius norm the effective rank keeps.
    #[arg(long, default_value_t = 0.99)]
    fraction: f64,
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn jacobian(args: JacobianArgs) -> Result<()> {
    let sigmas = parse_sigmas(&args.sigmas)?;
    if !(args.fraction > 0.0 && args.fraction <= 1.0) {
        return Err(Error::invalid(
            "--fraction",
            args.fraction,
            "must lie in (0, 1]",
        ));
    }
    let d = denoiser_from_spec(&args.denoiser)?;
    let x = read_rows(&args.input)?.to_dtype(DType::F64)?;
    if x.dim(1)? != d.dim() {
        return Err(Error::format(
            &args.input,
            format!(
                "rows have dimension {} but the denoiser's is {}",
                x.dim(1)?,
                d.dim()
            ),
        ));
    }
    let mut results = Vec::new();
    for &sigma in &sigmas {
        let j = d.jacobian(&x, sigma)?;
        for row in 0..x.dim(0)? {
            let s = singular_values(&j.get(row)?)?;
            results.push(json!({"row": row, "sigma": sigma, "effective_rank": effective_rank(&s, args.fraction), "singular_values": s}));
        }
    }
    emit(
        json!({"denoiser": args.denoiser, "method": d.jacobian_method(), "fraction": args.fraction, "results": results}),
        &args.out,
    )
}
