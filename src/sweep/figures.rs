//! The regime figures of a sweep (the paper's Fig. 2 and Fig. 4 at small
//! scale), drawn from its collected [`Results`] only.

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::results::{Pair, Results};
use crate::plot::{save_figure, Axis, Heatmap, LineChart, Scale, Series, Shade};
use crate::Result;

const MEMORIZATION: RGBColor = RGBColor(213, 94, 0);
const GENERALIZATION: RGBColor = RGBColor(0, 114, 178);

fn n_axis() -> Axis {
    Axis::new("training-set size N", Scale::Log2)
}

fn unit_axis(label: &str) -> Axis {
    Axis::fixed(label, Scale::Linear, (0.0, 1.0))
}

/// Shaded N ranges of the two regimes, each N widened by half an octave.
pub(crate) fn regime_shades(results: &Results) -> Vec<Shade> {
    let ns = &results.config.ns;
    let (lo, hi) = (
        *ns.iter().min().unwrap_or(&1) as f64,
        *ns.iter().max().unwrap_or(&1) as f64,
    );
    let shade = |list: &[usize], caption: &str, color| {
        let (&first, &last) = (list.iter().min()?, list.iter().max()?);
        Some(Shade {
            from: (first as f64 / 2f64.sqrt()).max(lo),
            to: (last as f64 * 2f64.sqrt()).min(hi),
            caption: caption.into(),
            color,
        })
    };
    [
        shade(&results.regimes.memorization, "memorization", MEMORIZATION),
        shade(
            &results.regimes.generalization,
            "generalization",
            GENERALIZATION,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn pair_series(pairs: &[&Pair], label: String, color: usize) -> Series {
    let mut pairs = pairs.to_vec();
    pairs.sort_by_key(|p| p.n);
    Series {
        label,
        points: pairs.iter().map(|p| (p.n as f64, p.rp.value)).collect(),
        band: pairs
            .iter()
            .map(|p| (p.n as f64, p.rp.ci95[0], p.rp.ci95[1]))
            .collect(),
        dashed: false,
        color,
    }
}

/// Writes the regime figures into `dir`: (a) RP between trained models,
/// (b) generalization score, (c) RP against the empirical denoiser, (d) the
/// denoiser gaps at each gap sigma. Returns every file written.
pub fn regime_figures(results: &Results, dir: &Path) -> Result<Vec<PathBuf>> {
    let trained = results.trained();
    let shades = regime_shades(results);
    let chart = |title: &str, y: Axis, series: Vec<Series>| LineChart {
        title: title.into(),
        x: n_axis(),
        y,
        series,
        shades: shades.clone(),
    };
    let rp = format!(
        "reproducibility ({} > {})",
        results.config.metrics.rp_similarity.name(),
        results.config.metrics.rp_threshold
    );
    let mut written = Vec::new();
    let mut save = |name: &str, figure: LineChart| -> Result<()> {
        written.extend(save_figure(&dir.join(name), &figure)?);
        Ok(())
    };
    save(
        "a_rp_between_models",
        chart(
            "(a) reproducibility between trained models",
            unit_axis(&rp),
            between_models(results, &trained),
        ),
    )?;
    save(
        "b_generalization",
        chart(
            "(b) generalization score (1 - memorized, d1/d2 < 1/3)",
            unit_axis("generalization score"),
            generalization(results, &trained),
        ),
    )?;
    save(
        "c_rp_vs_empirical",
        chart(
            "(c) reproducibility against the memorizing denoiser",
            unit_axis(&rp),
            versus_empirical(results, &trained),
        ),
    )?;
    for (j, sigma) in results.config.metrics.gap_sigmas.iter().enumerate() {
        save(
            &format!("d_gap_sigma_{sigma}"),
            chart(
                &format!("(d) denoiser gap at sigma = {sigma} (solid: empirical, dashed: truth)"),
                Axis::new("relative gap E|D - D_ref|^2 / E|D_ref|^2", Scale::Log10),
                gaps(results, &trained, j),
            ),
        )?;
    }
    if !results.budget_checks.is_empty() {
        written.extend(budget_figure(results, dir)?);
    }
    Ok(written)
}

/// (a): RP of every pair of trained models against N.
fn between_models(results: &Results, trained: &[String]) -> Vec<Series> {
    let mut between = Vec::new();
    for (i, a) in trained.iter().enumerate() {
        for b in &trained[i + 1..] {
            let pairs: Vec<&Pair> = results
                .pairs
                .iter()
                .filter(|p| &p.a == a && &p.b == b)
                .collect();
            between.push(pair_series(&pairs, format!("{a} vs {b}"), between.len()));
        }
    }
    between
}

/// (b): each trained model's generalization score with its bootstrap band.
fn generalization(results: &Results, trained: &[String]) -> Vec<Series> {
    trained
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let mut band: Vec<(f64, f64, f64)> = results
                .cells
                .iter()
                .filter(|c| &c.label == m)
                .map(|c| {
                    let ci = c.generalization.ci95;
                    (c.cell.n as f64, ci[0], ci[1])
                })
                .collect();
            band.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label: m.clone(),
                points: results.curve(m, |c| c.generalization.value),
                band,
                color: k,
                ..Series::default()
            }
        })
        .collect()
}

/// (c): RP of each trained model against the empirical denoiser.
fn versus_empirical(results: &Results, trained: &[String]) -> Vec<Series> {
    trained
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let pairs: Vec<&Pair> = results
                .pairs
                .iter()
                .filter(|p| p.versus_empirical() && &p.b == m)
                .collect();
            pair_series(&pairs, format!("{m} vs empirical"), k)
        })
        .collect()
}

/// (d): each trained model's gap to the empirical denoiser at gap level `j`
/// and, when every cell has one, to the true denoiser (dashed).
fn gaps(results: &Results, trained: &[String], j: usize) -> Vec<Series> {
    let mut series = Vec::new();
    for (k, m) in trained.iter().enumerate() {
        series.push(Series {
            label: format!("{m} to empirical"),
            points: results.curve(m, |c| c.gap_to_empirical[j]),
            color: k,
            ..Series::default()
        });
        if results.cells.iter().all(|c| c.gap_to_truth.is_some()) {
            series.push(Series {
                label: format!("{m} to truth"),
                points: results.curve(m, |c| c.gap_to_truth.as_ref().map_or(f64::NAN, |g| g[j])),
                dashed: true,
                color: k,
                ..Series::default()
            });
        }
    }
    series
}

/// N* (GL = 0.5) of each trained model against its training budget
/// (THEORY §13); the legend carries each model's verdict.
fn budget_figure(results: &Results, dir: &Path) -> Result<Vec<PathBuf>> {
    let series = results
        .budget_checks
        .iter()
        .enumerate()
        .map(|(k, b)| Series {
            label: format!("{} ({})", b.model, b.verdict_text()),
            points: b
                .budgets
                .iter()
                .zip(&b.n_star)
                .filter_map(|(&steps, n)| n.map(|n| (steps as f64, n)))
                .collect(),
            color: k,
            ..Series::default()
        })
        .collect();
    let chart = LineChart {
        title: "(e) budget check: N* where GL crosses 0.5, after each training budget".into(),
        x: Axis::new("training steps", Scale::Log2),
        y: Axis::new("N*", Scale::Log2),
        series,
        shades: Vec::new(),
    };
    Ok(save_figure(&dir.join("e_budget_check"), &chart)?.to_vec())
}

/// For each trained model, its gap to the empirical denoiser against sigma,
/// one line per N: a memorizing model follows the empirical denoiser at
/// every sigma, a generalizing one leaves it at small sigma.
pub fn gap_vs_sigma_figures(results: &Results, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut ns = results.config.ns.clone();
    ns.sort_unstable();
    for model in results.trained() {
        let series = ns
            .iter()
            .enumerate()
            .filter_map(|(k, &n)| {
                let cell = results
                    .cells
                    .iter()
                    .find(|c| c.cell.n == n && c.label == model)?;
                Some(Series {
                    label: format!("N = {n}"),
                    points: cell
                        .gap_sigmas
                        .iter()
                        .copied()
                        .zip(cell.gap_to_empirical.iter().copied())
                        .collect(),
                    color: k,
                    ..Series::default()
                })
            })
            .collect();
        let chart = LineChart {
            title: format!("{model}: gap to the memorizing denoiser"),
            x: Axis::new("noise level sigma", Scale::Log10),
            y: Axis::new("relative gap E|D - D_emp|^2 / E|D_emp|^2", Scale::Log10),
            series,
            shades: Vec::new(),
        };
        written.extend(save_figure(
            &dir.join(format!("gap_vs_sigma_{model}")),
            &chart,
        )?);
    }
    Ok(written)
}

/// One heatmap per N of RP between every two models, the empirical denoiser
/// included (the paper's Fig. 6). The diagonal is left blank.
pub fn rp_heatmaps(results: &Results, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut ns = results.config.ns.clone();
    ns.sort_unstable();
    for n in ns {
        let mut labels: Vec<String> = results
            .cells
            .iter()
            .filter(|c| c.cell.n == n)
            .map(|c| c.label.clone())
            .collect();
        labels.dedup();
        let rp = |a: &String, b: &String| results.rp(n, a, b).map_or(f64::NAN, |e| e.value);
        let values = labels
            .iter()
            .map(|a| {
                labels
                    .iter()
                    .map(|b| if a == b { f64::NAN } else { rp(a, b) })
                    .collect()
            })
            .collect();
        let heatmap = Heatmap {
            title: format!(
                "reproducibility ({} > {}) at N = {n}",
                results.config.metrics.rp_similarity.name(),
                results.config.metrics.rp_threshold
            ),
            labels,
            values,
        };
        written.extend(save_figure(
            &dir.join(format!("rp_heatmap_n{n}")),
            &heatmap,
        )?);
    }
    Ok(written)
}
