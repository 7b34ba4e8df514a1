//! Collecting a sweep: every finished cell's scores, the reproducibility of
//! each pair of models sampled from the same noise, the regimes the scores
//! put each N in, and the N where each model crosses generalization 0.5.

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::budget::{budget_checks, BudgetCheck};
use super::cell::{CellResult, Estimate, Model, CELL_FILE, SAMPLES_FILE};
use super::config::SweepConfig;
use super::engine::Sweep;
use super::failed::{FailedCell, FAILED_FILE};
use crate::data::npy::read_npy;
use crate::io::{write_atomic, write_json};
use crate::metrics::crossing;
use crate::{Error, Result};

/// A generalization score at most this puts a cell in the memorization
/// regime, and at least 1 minus it in the generalization regime.
pub const REGIME_MARGIN: f64 = 0.1;

/// RP of two models at one N (THEORY §7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub n: usize,
    pub a: String,
    pub b: String,
    pub rp: Estimate,
}

impl Pair {
    /// Whether `b` is compared with the empirical denoiser (always `a` when present).
    pub fn versus_empirical(&self) -> bool {
        self.a == Model::Empirical.label()
    }
}

/// Where the sweep's N fall, from the trained models' generalization scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regimes {
    /// N at which every trained model has GL <= 0.1.
    pub memorization: Vec<usize>,
    /// N at which every trained model has GL >= 0.9.
    pub generalization: Vec<usize>,
}

/// The N where a model's generalization score first passes 0.5,
/// interpolated linearly in log2 N between the two grid points around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    pub model: String,
    pub n_star: Option<f64>,
}

/// Everything a sweep measured (`results.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub config: SweepConfig,
    pub cells: Vec<CellResult>,
    pub pairs: Vec<Pair>,
    pub regimes: Regimes,
    pub crossings: Vec<Crossing>,
    /// N* per training budget and the verdict (THEORY §13), when the config
    /// lists budgets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_checks: Vec<BudgetCheck>,
    /// Cells whose training diverged: no scores, listed apart.
    #[serde(default)]
    pub failed: Vec<FailedCell>,
    /// Cells of the grid with no result yet (unfinished shards).
    pub missing: Vec<String>,
}

impl Results {
    /// Reads every finished cell under `root` (a sweep's output folder) and
    /// computes the paired scores.
    pub fn collect(root: &Path) -> Result<Self> {
        let config = SweepConfig::load(&root.join("sweep.toml"))?;
        let grid = Sweep::grid(&config);
        let mut cells = Vec::new();
        let (mut failed, mut missing) = (Vec::new(), Vec::new());
        for cell in &grid {
            let dir = cell.dir(root);
            if dir.join(CELL_FILE).exists() {
                cells.push(CellResult::read(&dir)?);
            } else if dir.join(FAILED_FILE).exists() {
                failed.push(FailedCell::read(&dir)?);
            } else {
                missing.push(dir.display().to_string());
            }
        }
        let pairs = pairs(root, &config, &cells)?;
        let regimes = regimes(&config.ns, &cells);
        let crossings = trained_labels(&cells)
            .into_iter()
            .map(|model| Crossing {
                n_star: crossing(&curve(&cells, &model, |c| c.generalization.value), 0.5),
                model,
            })
            .collect();
        let budget_checks = budget_checks(root, &config, &cells)?;
        Ok(Results {
            config,
            cells,
            pairs,
            regimes,
            crossings,
            budget_checks,
            failed,
            missing,
        })
    }

    /// An error listing the failed cells (diverged training), if any.
    pub fn check_failed(&self) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let cells: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("{} at N = {} (step {})", f.label, f.cell.n, f.step))
            .collect();
        Err(Error::invalid(
            "sweep",
            format!("{} failed cells", cells.len()),
            format!(
                "training diverged for {}; results and figures leave them out (see each cell's {FAILED_FILE}; `regimes collect --allow-failed` accepts them)",
                cells.join(", ")
            ),
        ))
    }

    /// `(N, value)` of one model, in N order.
    pub fn curve(&self, model: &str, value: impl Fn(&CellResult) -> f64) -> Vec<(f64, f64)> {
        curve(&self.cells, model, value)
    }

    /// Labels of the trained models, in grid order.
    pub fn trained(&self) -> Vec<String> {
        trained_labels(&self.cells)
    }

    /// Where the transition condition fails: every trained model must have
    /// GL <= 0.1 at the smallest N and GL >= 0.9 at the largest. Empty: it holds.
    pub fn transition_violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        for model in self.trained() {
            let curve = self.curve(&model, |c| c.generalization.value);
            if let (Some(&(n0, g0)), Some(&(n1, g1))) = (curve.first(), curve.last()) {
                if g0 > REGIME_MARGIN {
                    violations.push(format!(
                        "{model}: GL = {g0:.3} > {REGIME_MARGIN} at the smallest N = {n0}"
                    ));
                }
                if g1 < 1.0 - REGIME_MARGIN {
                    violations.push(format!(
                        "{model}: GL = {g1:.3} < {} at the largest N = {n1}",
                        1.0 - REGIME_MARGIN
                    ));
                }
            }
        }
        violations
    }

    /// RP between the models labelled `a` and `b` at `n`, in either order.
    pub fn rp(&self, n: usize, a: &str, b: &str) -> Option<Estimate> {
        self.pairs
            .iter()
            .find(|p| p.n == n && ((p.a == a && p.b == b) || (p.a == b && p.b == a)))
            .map(|p| p.rp)
    }

    /// A plain-text table: generalization score per N and model, RP of each
    /// pair of trained models, and the crossings of GL = 0.5.
    pub fn summary(&self) -> String {
        let trained = self.trained();
        let mut text = format!("{:>6}", "N");
        for m in &trained {
            text.push_str(&format!(" {:>18}", format!("GL {m}")));
        }
        text.push_str("   RP between models (min)   RP vs empirical (mean)\n");
        let mut ns = self.config.ns.clone();
        ns.sort_unstable();
        for n in ns {
            text.push_str(&format!("{n:>6}"));
            for m in &trained {
                let gl = self.cells.iter().find(|c| c.cell.n == n && &c.label == m);
                text.push_str(&format!(
                    " {:>18}",
                    gl.map_or("-".into(), |c| format!("{:.3}", c.generalization.value))
                ));
            }
            let at_n: Vec<&Pair> = self.pairs.iter().filter(|p| p.n == n).collect();
            let between = at_n
                .iter()
                .filter(|p| !p.versus_empirical())
                .map(|p| p.rp.value)
                .fold(f64::NAN, f64::min);
            let versus: Vec<f64> = at_n
                .iter()
                .filter(|p| p.versus_empirical())
                .map(|p| p.rp.value)
                .collect();
            let mean = versus.iter().sum::<f64>() / versus.len() as f64;
            text.push_str(&format!("   {between:>24.3}   {mean:>22.3}\n"));
        }
        for c in &self.crossings {
            let at = c
                .n_star
                .map_or("not crossed".into(), |n| format!("N* = {n:.1}"));
            text.push_str(&format!(
                "{}: generalization score crosses 0.5 at {at}\n",
                c.model
            ));
        }
        for b in &self.budget_checks {
            let stars: Vec<String> = b
                .budgets
                .iter()
                .zip(&b.n_star)
                .map(|(steps, n)| match n {
                    Some(n) => format!("{n:.1} after {steps}"),
                    None => format!("none after {steps}"),
                })
                .collect();
            text.push_str(&format!(
                "{}: budget check N* = {}: {}\n",
                b.model,
                stars.join(", "),
                b.verdict_text()
            ));
        }
        for f in &self.failed {
            text.push_str(&format!(
                "{} at N = {} failed: {}\n",
                f.label, f.cell.n, f.error
            ));
        }
        text.push_str(&format!(
            "memorization regime (every model GL <= {REGIME_MARGIN}): N in {:?}; generalization regime (GL >= {}): N in {:?}\n",
            self.regimes.memorization,
            1.0 - REGIME_MARGIN,
            self.regimes.generalization
        ));
        text
    }

    /// Writes `results.json` and `results.csv` (long format: one value per
    /// row) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2]> {
        let json_path = dir.join("results.json");
        write_json(&json_path, self)?;
        let mut csv = String::from("n,model,other,metric,sigma,value,ci_low,ci_high\n");
        let mut row =
            |n: usize, model: &str, other: &str, metric: &str, sigma: Option<f64>, e: Estimate| {
                let sigma = sigma.map(|s| s.to_string()).unwrap_or_default();
                csv.push_str(&format!(
                    "{n},{model},{other},{metric},{sigma},{},{},{}\n",
                    e.value, e.ci95[0], e.ci95[1]
                ));
            };
        let bare = |value: f64| Estimate {
            value,
            ci95: [f64::NAN, f64::NAN],
        };
        for c in &self.cells {
            let n = c.cell.n;
            row(n, &c.label, "", "generalization", None, c.generalization);
            row(n, &c.label, "", "memorization", None, c.memorization);
            for (k, &sigma) in c.gap_sigmas.iter().enumerate() {
                row(
                    n,
                    &c.label,
                    "empirical",
                    "gap",
                    Some(sigma),
                    bare(c.gap_to_empirical[k]),
                );
                if let Some(truth) = &c.gap_to_truth {
                    row(n, &c.label, "truth", "gap", Some(sigma), bare(truth[k]));
                }
            }
        }
        for p in &self.pairs {
            row(p.n, &p.a, &p.b, "reproducibility", None, p.rp);
        }
        // A failed cell's row holds the step its training diverged at.
        for f in &self.failed {
            row(f.cell.n, &f.label, "", "failed", None, bare(f.step as f64));
        }
        let csv_path = dir.join("results.csv");
        write_atomic(&csv_path, csv.replace("NaN", "").as_bytes())?;
        Ok([json_path, csv_path])
    }
}

/// Labels of the trained models among `cells`, in their order.
pub(super) fn trained_labels(cells: &[CellResult]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for c in cells {
        if matches!(c.cell.model, Model::Trained { .. }) && !labels.contains(&c.label) {
            labels.push(c.label.clone());
        }
    }
    labels
}

fn curve(cells: &[CellResult], model: &str, value: impl Fn(&CellResult) -> f64) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = cells
        .iter()
        .filter(|c| c.label == model)
        .map(|c| (c.cell.n as f64, value(c)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn regimes(ns: &[usize], cells: &[CellResult]) -> Regimes {
    let at = |n: usize, keep: &dyn Fn(f64) -> bool| {
        let trained: Vec<f64> = cells
            .iter()
            .filter(|c| c.cell.n == n && matches!(c.cell.model, Model::Trained { .. }))
            .map(|c| c.generalization.value)
            .collect();
        !trained.is_empty() && trained.iter().all(|&g| keep(g))
    };
    let mut ns = ns.to_vec();
    ns.sort_unstable();
    Regimes {
        memorization: ns
            .iter()
            .copied()
            .filter(|&n| at(n, &|g| g <= REGIME_MARGIN))
            .collect(),
        generalization: ns
            .iter()
            .copied()
            .filter(|&n| at(n, &|g| g >= 1.0 - REGIME_MARGIN))
            .collect(),
    }
}

/// RP of every pair of models at each N, the empirical denoiser included.
fn pairs(root: &Path, config: &SweepConfig, cells: &[CellResult]) -> Result<Vec<Pair>> {
    let samples =
        |c: &CellResult| -> Result<Tensor> { read_npy(&c.cell.dir(root).join(SAMPLES_FILE)) };
    let mut out = Vec::new();
    for (i, a) in cells.iter().enumerate() {
        for b in &cells[i + 1..] {
            if a.cell.n != b.cell.n {
                continue;
            }
            out.push(Pair {
                n: a.cell.n,
                a: a.label.clone(),
                b: b.label.clone(),
                rp: config
                    .metrics
                    .rp(&samples(a)?, &samples(b)?, config.sampling.seed)?,
            });
        }
    }
    Ok(out)
}
