//! A training run's losses from its metrics.csv (THEORY §15): the batch
//! loss, and the training and held-out losses on the run's fixed draws,
//! overall and per noise-level band.

use std::path::Path;

use super::{Axis, LineChart, Scale, Series};
use crate::nn::train::{MetricsTable, BAND_NAMES};
use crate::Result;

/// The run's losses against the step: the batch loss (thin), the training
/// (solid) and held-out (dashed) losses on fixed draws; then the same two
/// per noise-level band, one colour per band.
pub fn run_loss_charts(run: &Path) -> Result<[LineChart; 2]> {
    let metrics = MetricsTable::read(run)?;
    // Log axes: positive steps and losses only.
    let line = |label: &str, column: &str, color, dashed| Series {
        label: label.into(),
        points: (metrics.column(column).into_iter())
            .filter(|p| p.0 > 0.0 && p.1 > 0.0)
            .collect(),
        color,
        dashed,
        ..Series::default()
    };
    let chart = |title: String, series| LineChart {
        title,
        x: Axis::new("training step", Scale::Log2),
        y: Axis::new("loss", Scale::Log10),
        series,
        shades: Vec::new(),
    };
    let totals = vec![
        line("batch loss", "loss", 6, false),
        line("training rows (fixed draws)", "train_loss", 0, false),
        line("held-out rows (fixed draws)", "heldout_loss", 1, true),
    ];
    let mut bands = Vec::new();
    for (k, band) in BAND_NAMES.iter().enumerate() {
        bands.push(line(
            &format!("sigma {band} training"),
            &format!("train_loss_{band}"),
            k,
            false,
        ));
        bands.push(line(
            &format!("sigma {band} held-out"),
            &format!("heldout_loss_{band}"),
            k,
            true,
        ));
    }
    // The folder's last components name it (a sweep cell's run is cells/nN/MODEL/run).
    let parts: Vec<String> = run
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let name = parts[parts.len().saturating_sub(3)..].join("/");
    Ok([
        chart(format!("{name}: training and held-out loss"), totals),
        chart(
            format!("{name}: losses per noise band (dashed: held-out)"),
            bands,
        ),
    ])
}
