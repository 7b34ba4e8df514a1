//! Collapse onto training points, predicted and measured (THEORY §8): for N
//! points of an isotropic Gaussian in dimension d, the closed form
//! sigma_C = s / sqrt(N^(2/d) - 1), the excess-entropy criterion, the clone
//! test with the empirical denoiser (the level where two clones end on the
//! same training point with probability 1/2) and the median level from which
//! a reverse-SDE trajectory's nearest training point stops changing.
//!
//! cargo run --release --bin collapse -- experiments/configs/collapse.toml

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::Deserialize;

use diffusion_regimes::data::{Spectrum, Synthetic, SyntheticSpec};
use diffusion_regimes::experiment::{exit_code, load_toml, write_csv_and_figure, ExperimentCli};
use diffusion_regimes::plot::{Axis, LineChart, Scale, Series};
use diffusion_regimes::theory::{
    clone_test, collapse_sigma_entropy, collapse_sigma_isotropic, last_switch_levels, CloneCurve,
};
use diffusion_regimes::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollapseConfig {
    name: String,
    dims: Vec<usize>,
    ns: Vec<usize>,
    std: f64,
    /// Clone pairs and settling trajectories per (d, N).
    trajectories: usize,
    /// Levels of the geometric grid from sigma = 80 to 0.01 (then 0).
    levels: usize,
    /// Draws of the distribution for the entropy criterion.
    entropy_draws: usize,
    #[serde(default)]
    seed: u64,
}

fn run(cli: &ExperimentCli) -> Result<()> {
    let path = cli.config_or("experiments/configs/collapse.toml");
    let c: CollapseConfig = load_toml(&path)?;
    if c.levels < 3 || c.trajectories < 2 || !c.std.is_finite() || c.std <= 0.0 {
        return Err(Error::format(
            &path,
            "need levels >= 3, trajectories >= 2 and std > 0",
        ));
    }
    let figures = cli
        .sweep
        .figures
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&c.name));
    let (hi, lo) = (80f64.ln(), 0.01f64.ln());
    let mut sigmas: Vec<f64> = (0..c.levels)
        .map(|i| (hi + (lo - hi) * i as f64 / (c.levels - 1) as f64).exp())
        .collect();
    sigmas.push(0.0);
    let mut csv = String::from("dim,n,closed_form,entropy,clone_test,settling_median\n");
    let mut series = Vec::new();
    for (k, &d) in c.dims.iter().enumerate() {
        let spec = SyntheticSpec::Gaussian {
            ambient: d,
            spectrum: Spectrum::Isotropic {
                variance: c.std * c.std,
            },
        };
        let dist = Synthetic::new(spec, c.seed)?;
        let draws = dist.sample_fresh(c.entropy_draws)?;
        let (mut closed, mut cloned, mut entropy) = (Vec::new(), Vec::new(), Vec::new());
        for &n in &c.ns {
            let train = dist.sample(n)?;
            let predicted = collapse_sigma_isotropic(c.std, n as f64, d);
            // Clone at the grid levels within a factor 4 of the prediction.
            let at: Vec<usize> = (0..c.levels)
                .filter(|&i| (sigmas[i] / predicted).ln().abs() < 4f64.ln())
                .collect();
            let curve = clone_test(&train, None, &sigmas, &at, c.trajectories, c.seed)?;
            let measured = CloneCurve::level_where(&curve.same_point, &curve.sigmas, 0.5);
            let by_entropy = collapse_sigma_entropy(&draws, n, c.seed)?;
            let mut settled = last_switch_levels(&train, &sigmas, c.trajectories, c.seed)?;
            settled.sort_by(f64::total_cmp);
            let median = settled[settled.len() / 2];
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
            println!(
                "d = {d}, N = {n}: closed form {predicted:.3}, entropy {}, clone test {}, settling median {median:.3}",
                show(by_entropy),
                show(measured)
            );
            let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            csv.push_str(&format!(
                "{d},{n},{predicted},{},{},{median}\n",
                cell(by_entropy),
                cell(measured)
            ));
            closed.push((n as f64, predicted));
            cloned.extend(measured.map(|m| (n as f64, m)));
            entropy.extend(by_entropy.map(|e| (n as f64, e)));
        }
        series.push(Series {
            label: format!("d = {d}: closed form (dashed)"),
            points: closed,
            dashed: true,
            color: k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("d = {d}: clone test"),
            points: cloned,
            color: k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("d = {d}: excess entropy"),
            points: entropy,
            color: k + c.dims.len(),
            ..Series::default()
        });
    }
    let chart = LineChart {
        title: format!("collapse level sigma_C, N points of N(0, {}^2 I)", c.std),
        x: Axis {
            label: "training-set size N".into(),
            scale: Scale::Log2,
            range: None,
        },
        y: Axis {
            label: "sigma_C".into(),
            scale: Scale::Log10,
            range: None,
        },
        series,
        shades: Vec::new(),
    };
    write_csv_and_figure(&figures, "collapse", &csv, &chart)?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = ExperimentCli::parse();
    // No cells to run in parallel: every core serves the denoiser's GEMMs.
    diffusion_regimes::experiment::set_tensor_threads(1);
    exit_code(run(&cli))
}
