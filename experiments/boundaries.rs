//! Boundaries of trained models against the theory (THEORY §8), from a regime
//! sweep: the N* where each model's generalization score passes 0.5, with a
//! bootstrap interval (samples resampled within each N), and per N the noise
//! level where the model's gap to the memorizing denoiser and its gap to the
//! true one cross, drawn against the collapse level sigma_C(N) of the
//! excess-entropy criterion.
//!
//! cargo run --release --bin boundaries -- experiments/configs/boundaries.toml

use std::path::PathBuf;
use std::process::ExitCode;

use candle_core::DType;
use clap::Parser;
use rand::Rng;
use serde::Deserialize;

use diffusion_regimes::data::npy::read_npy;
use diffusion_regimes::experiment::{
    crossing, exit_code, load_toml, quantile, run_sweep, write_csv_and_figure, CellResult,
    ExperimentCli, Model, SweepConfig,
};
use diffusion_regimes::metrics::{nearest_two, DEFAULT_CHUNK};
use diffusion_regimes::plot::{Axis, LineChart, Scale, Series};
use diffusion_regimes::rng::{stream, Purpose};
use diffusion_regimes::theory::collapse_sigma_entropy;
use diffusion_regimes::Result;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoundaryConfig {
    /// The sweep config whose models are analysed (run first if unfinished).
    sweep: PathBuf,
    resamples: usize,
    /// Draws of the synthetic distribution for the entropy criterion.
    entropy_draws: usize,
    #[serde(default)]
    seed: u64,
}

/// The noise level where ln(gap to empirical / gap to truth) changes sign,
/// the first from the smallest sigma, interpolated in ln sigma.
fn gap_crossing(cell: &CellResult) -> Option<f64> {
    let truth = cell.gap_to_truth.as_ref()?;
    let mut points: Vec<(f64, f64)> = cell
        .gap_sigmas
        .iter()
        .zip(cell.gap_to_empirical.iter().zip(truth))
        .map(|(&s, (&e, &t))| (s.ln(), (e / t).ln()))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.windows(2).find_map(|w| {
        let ((s0, r0), (s1, r1)) = (w[0], w[1]);
        (r0.signum() != r1.signum()).then(|| (s0 + (s1 - s0) * r0 / (r0 - r1)).exp())
    })
}

fn run(cli: &ExperimentCli) -> Result<()> {
    let path = cli.config_or("experiments/configs/boundaries.toml");
    let c: BoundaryConfig = load_toml(&path)?;
    let config = SweepConfig::load(&c.sweep)?;
    let root = cli.sweep.out(&config);
    let figures = cli
        .sweep
        .figures
        .clone()
        .unwrap_or_else(|| root.join("boundaries"));
    let Some(results) = run_sweep(
        config.clone(),
        &diffusion_regimes::experiment::SweepArgs {
            figures: Some(root.clone()),
            ..cli.sweep.clone()
        },
    )?
    else {
        return Ok(());
    };
    let sweep = diffusion_regimes::experiment::Sweep::open(config.clone(), &root)?;
    let mut csv = String::from("model,n,generalization,sigma_gap_crossing,sigma_c_entropy\n");
    let mut ns = config.ns.clone();
    ns.sort_unstable();
    // Predicted collapse level per N from draws of the distribution.
    let mut predicted = Vec::new();
    if let Some(truth) = &sweep.truth {
        let draws = truth.sample_rows(1 << 41, c.entropy_draws)?;
        for &n in &ns {
            predicted.extend(collapse_sigma_entropy(&draws, n, c.seed)?.map(|s| (n as f64, s)));
        }
    }
    let mut series = vec![Series {
        label: "sigma_C (excess entropy)".into(),
        points: predicted.clone(),
        dashed: true,
        color: 6,
        ..Series::default()
    }];
    for (k, model) in results.trained().iter().enumerate() {
        // Per-sample memorization flags of every N, recomputed from the samples.
        let mut flags = Vec::new();
        for &n in &ns {
            let cell = results
                .cells
                .iter()
                .find(|r| r.cell.n == n && &r.label == model);
            let Some(cell) = cell else { continue };
            let samples = read_npy(&cell.cell.dir(&root).join("samples.npy"))?;
            let train = sweep
                .training_set(n)?
                .flatten_from(1)?
                .to_dtype(DType::F32)?;
            flags.push((
                n as f64,
                nearest_two(&samples, &train, DEFAULT_CHUNK)?.ratio_memorized(),
            ));
            let crossing_sigma = gap_crossing(cell);
            let sigma_c = predicted.iter().find(|p| p.0 == n as f64).map(|p| p.1);
            let cellv = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            csv.push_str(&format!(
                "{model},{n},{},{},{}\n",
                cell.generalization.value,
                cellv(crossing_sigma),
                cellv(sigma_c)
            ));
        }
        let gl = |f: &[bool]| 1.0 - f.iter().filter(|&&m| m).count() as f64 / f.len() as f64;
        let curve: Vec<(f64, f64)> = flags.iter().map(|(n, f)| (*n, gl(f))).collect();
        let mut rng = stream(c.seed, Purpose::Bootstrap, 1);
        let mut stars: Vec<f64> = (0..c.resamples)
            .filter_map(|_| {
                let resampled: Vec<(f64, f64)> = flags
                    .iter()
                    .map(|(n, f)| {
                        let draw: Vec<bool> =
                            (0..f.len()).map(|_| f[rng.gen_range(0..f.len())]).collect();
                        (*n, gl(&draw))
                    })
                    .collect();
                crossing(&resampled, 0.5)
            })
            .collect();
        stars.sort_by(f64::total_cmp);
        let at = |q: f64| quantile(&stars, q);
        println!(
            "{model}: N* = {} (bootstrap 95% interval {} - {}, {} of {} resamples cross)",
            crossing(&curve, 0.5).map_or("-".into(), |v| format!("{v:.1}")),
            at(0.025).map_or("-".into(), |v| format!("{v:.1}")),
            at(0.975).map_or("-".into(), |v| format!("{v:.1}")),
            stars.len(),
            c.resamples
        );
        let crossings: Vec<(f64, f64)> = results
            .cells
            .iter()
            .filter(|r| &r.label == model && matches!(r.cell.model, Model::Trained { .. }))
            .filter_map(|r| gap_crossing(r).map(|s| (r.cell.n as f64, s)))
            .collect();
        let mut crossings = crossings;
        crossings.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push(Series {
            label: format!("{model}: gaps to empirical and truth equal"),
            points: crossings,
            color: k,
            ..Series::default()
        });
    }
    let chart = LineChart {
        title: "where trained models switch between the memorizing and the true denoiser".into(),
        x: Axis {
            label: "training-set size N".into(),
            scale: Scale::Log2,
            range: None,
        },
        y: Axis {
            label: "noise level sigma".into(),
            scale: Scale::Log10,
            range: None,
        },
        series,
        shades: Vec::new(),
    };
    write_csv_and_figure(&figures, "boundaries", &csv, &chart)?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = ExperimentCli::parse();
    diffusion_regimes::experiment::set_tensor_threads(cli.sweep.jobs());
    exit_code(run(&cli))
}
