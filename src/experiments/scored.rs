//! Several trained models' outputs from the same noise at one N, scored as
//! the conditional and inverse-problem experiments score them (THEORY §7,
//! §10, §11): RP between the first two models, RP of each against the exact
//! memorizing solution and against the true distribution's, and GL of each;
//! with the CSV rows and the curves against N that both draw.

use candle_core::Tensor;
use serde::Serialize;

use super::csv_cell;
use crate::metrics::{ratio_memorization, Bootstrap};
use crate::plot::{Axis, LineChart, Scale, Series};
use crate::sweep::{Estimate, MetricSettings};
use crate::Result;

/// One model's scores at one N.
#[derive(Clone, Debug, Serialize)]
pub struct ModelScores {
    pub model: String,
    pub rp_vs_memorizing: Estimate,
    pub rp_vs_truth: Option<Estimate>,
    pub generalization: Estimate,
}

/// Every model's scores at one N.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredPoint {
    pub n: usize,
    /// RP between the first two models' outputs.
    pub rp_between_models: Estimate,
    pub models: Vec<ModelScores>,
}

/// What the models' outputs are scored against, row j of each from noise j.
pub struct References<'a> {
    /// The exact memorizing solution (the empirical prior's).
    pub memorizing: &'a Tensor,
    /// The true distribution's, when it is known.
    pub truth: Option<&'a Tensor>,
    /// The training set, [N, n] rows, for GL.
    pub train: &'a Tensor,
}

/// Scores `outputs` (label, [M, n] rows), at least two of them, at `n`;
/// bootstrap intervals from `metrics` and `seed`.
pub fn score_outputs(
    n: usize,
    outputs: &[(String, Tensor)],
    references: &References,
    metrics: &MetricSettings,
    seed: u64,
) -> Result<ScoredPoint> {
    let bootstrap = Bootstrap {
        resamples: metrics.resamples,
        seed,
    };
    let rp = |p: &Tensor, q: &Tensor| metrics.rp(p, q, seed);
    let models = outputs
        .iter()
        .map(|(label, x)| {
            let memorized = ratio_memorization(x, references.train, "raw", bootstrap)?;
            Ok(ModelScores {
                model: label.clone(),
                rp_vs_memorizing: rp(x, references.memorizing)?,
                rp_vs_truth: references.truth.map(|t| rp(x, t)).transpose()?,
                generalization: Estimate::from(&memorized.complement("generalization")),
            })
        })
        .collect::<Result<_>>()?;
    Ok(ScoredPoint {
        n,
        rp_between_models: rp(&outputs[0].1, &outputs[1].1)?,
        models,
    })
}

/// CSV rows `"key",...,n,model,rp_between_models,rp_vs_memorizing,rp_vs_truth,generalization`
/// of one curve, its keys quoted (operators such as project:8,0 hold a comma).
pub fn csv_rows(keys: &[&str], points: &[ScoredPoint]) -> String {
    let keys: String = keys.iter().map(|k| format!("\"{k}\",")).collect();
    let mut csv = String::new();
    for p in points {
        for m in &p.models {
            csv.push_str(&format!(
                "{keys}{},{},{},{},{},{}\n",
                p.n,
                m.model,
                p.rp_between_models.value,
                m.rp_vs_memorizing.value,
                csv_cell(m.rp_vs_truth.map(|e| e.value)),
                m.generalization.value
            ));
        }
    }
    csv
}

/// The scores of `points` against N: RP between models, and per model RP
/// against the references (legends `memorizing` and `truth` name them) and GL.
pub fn curves_chart(
    title: String,
    points: &[ScoredPoint],
    (memorizing, truth): (&str, &str),
) -> LineChart {
    let along = |f: &dyn Fn(&ScoredPoint) -> Option<Estimate>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| f(p).map(|e| (p.n as f64, e.value)))
            .collect()
    };
    let mut series = vec![Series {
        label: "RP between models".into(),
        points: along(&|p| Some(p.rp_between_models)),
        color: 0,
        ..Series::default()
    }];
    let labels: Vec<String> = points[0].models.iter().map(|m| m.model.clone()).collect();
    for (k, label) in labels.iter().enumerate() {
        let model = |p: &ScoredPoint| p.models[k].clone();
        series.push(Series {
            label: format!("{label}: RP vs {memorizing}"),
            points: along(&|p| Some(model(p).rp_vs_memorizing)),
            dashed: true,
            color: 1 + k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("{label}: RP vs {truth}"),
            points: along(&|p| model(p).rp_vs_truth),
            color: 1 + k,
            ..Series::default()
        });
        series.push(Series {
            label: format!("{label}: GL"),
            points: along(&|p| Some(model(p).generalization)),
            dashed: true,
            color: 3 + labels.len() + k,
            ..Series::default()
        });
    }
    LineChart {
        title,
        x: Axis::new("training-set size N", Scale::Log2),
        y: Axis::fixed("score", Scale::Linear, (0.0, 1.0)),
        series,
        shades: Vec::new(),
    }
}
