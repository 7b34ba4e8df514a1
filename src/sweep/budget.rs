//! The budget check of a sweep (THEORY §13): N*, the GL = 0.5 crossing, of
//! each trained model after each training budget, and whether it still moves.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cell::CellResult;
use super::config::SweepConfig;
use super::results::trained_labels;
use crate::io::read_json;
use crate::metrics::crossing;
use crate::Result;

/// N* of one model after each budget, and the verdict from the last two.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    pub model: String,
    pub budgets: Vec<u64>,
    /// N* after each budget (None: GL never reaches 0.5 on the grid).
    pub n_star: Vec<Option<f64>>,
    pub verdict: BudgetVerdict,
    /// N* after one of the last two budgets is the grid's smallest N: GL
    /// already reaches 0.5 there, so that boundary lies somewhere below the
    /// grid, the crossing is clamped to its edge, and a "converged" verdict
    /// only says it stayed below.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub below_grid: bool,
}

impl BudgetCheck {
    /// The verdict as reports print it, with the grid-edge caveat.
    pub fn verdict_text(&self) -> String {
        match self.below_grid {
            true => format!("{}, N* at the grid's smallest N", self.verdict),
            false => self.verdict.to_string(),
        }
    }
}

/// `dir/budgets/step-XXXXXXXX.json`: a trained cell's scores after `budget` steps.
pub fn budget_file(dir: &Path, budget: u64) -> PathBuf {
    dir.join("budgets").join(format!("step-{budget:08}.json"))
}

/// The samples a cell's model drew after `budget` steps, beside its scores
/// (sweeps of earlier versions kept only the scores).
pub fn budget_samples(dir: &Path, budget: u64) -> PathBuf {
    budget_file(dir, budget).with_extension("npy")
}

/// The check for every trained model of the sweep in `root`, from the
/// finished cells (`cells`, scored at train.steps) and their budget files;
/// empty when the config lists no budgets. Cells without a file yet are
/// left out of that budget's curve.
pub fn budget_checks(
    root: &Path,
    config: &SweepConfig,
    cells: &[CellResult],
) -> Result<Vec<BudgetCheck>> {
    let budgets = &config.train.budgets;
    if budgets.is_empty() {
        return Ok(Vec::new());
    }
    trained_labels(cells)
        .into_iter()
        .map(|model| {
            let n_star = budgets
                .iter()
                .map(|&budget| {
                    let mut curve = Vec::new();
                    for c in cells.iter().filter(|c| c.label == model) {
                        let gl = match budget == config.train.steps {
                            true => Some(c.generalization.value),
                            false => read_budget(&c.cell.dir(root), budget)?
                                .map(|r| r.generalization.value),
                        };
                        curve.extend(gl.map(|gl| (c.cell.n as f64, gl)));
                    }
                    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Ok(crossing(&curve, 0.5))
                })
                .collect::<Result<Vec<_>>>()?;
            let last_two = &n_star[n_star.len().saturating_sub(2)..];
            let verdict = match last_two {
                [at_2b, at_4b] => BudgetVerdict::from_crossings(*at_2b, *at_4b),
                _ => BudgetVerdict::BudgetBound,
            };
            let smallest = config.ns.iter().min().map(|&n| n as f64);
            Ok(BudgetCheck {
                model,
                budgets: budgets.clone(),
                below_grid: smallest.is_some() && last_two.contains(&smallest),
                n_star,
                verdict,
            })
        })
        .collect()
}

fn read_budget(dir: &Path, budget: u64) -> Result<Option<CellResult>> {
    let path = budget_file(dir, budget);
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// Whether a regime boundary still moves with the training budget (THEORY §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetVerdict {
    /// N* moved by less than 10% from budget 2B to 4B.
    Converged,
    /// N* moved by 10% or more, or is missing at one of the two budgets.
    BudgetBound,
}

/// The largest relative move of N* from 2B to 4B still called converged.
pub const CONVERGED_MOVE: f64 = 0.1;

impl BudgetVerdict {
    /// The verdict from N* at budgets 2B and 4B (THEORY §13).
    pub fn from_crossings(at_2b: Option<f64>, at_4b: Option<f64>) -> Self {
        match (at_2b, at_4b) {
            (Some(a), Some(b)) if ((b - a) / a).abs() < CONVERGED_MOVE => Self::Converged,
            _ => Self::BudgetBound,
        }
    }
}

impl std::fmt::Display for BudgetVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Converged => "converged",
            Self::BudgetBound => "budget-bound",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_verdict_follows_the_ten_percent_rule() {
        use BudgetVerdict::*;
        assert_eq!(
            BudgetVerdict::from_crossings(Some(20.0), Some(21.9)),
            Converged
        );
        assert_eq!(
            BudgetVerdict::from_crossings(Some(20.0), Some(18.1)),
            Converged
        );
        assert_eq!(
            BudgetVerdict::from_crossings(Some(20.0), Some(22.0)),
            BudgetBound
        );
        assert_eq!(BudgetVerdict::from_crossings(None, Some(20.0)), BudgetBound);
        assert_eq!(BudgetVerdict::from_crossings(Some(20.0), None), BudgetBound);
        assert_eq!(Converged.to_string(), "converged");
    }
}
