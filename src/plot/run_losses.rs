//! A training run's losses from its metrics.csv (THEORY §15): the batch
//! loss, and the training and held-out losses on the run's fixed draws,
//! overall and per noise-level band.

use std::path::Path;

use super::{Axis, LineChart, Scale, Series};
use crate::io::read;
use crate::nn::checkpoint::METRICS_FILE;
use crate::nn::train::BAND_NAMES;
use crate::{Error, Result};

/// metrics.csv of the run folder `run`: its columns by name, empty cells
/// as NaN.
struct Metrics {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Metrics {
    fn read(run: &Path) -> Result<Self> {
        let path = run.join(METRICS_FILE);
        let text =
            String::from_utf8(read(&path)?).map_err(|_| Error::format(&path, "not UTF-8"))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| Error::format(&path, "empty: no header"))?
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .enumerate()
            .map(|(k, line)| {
                let cells: Vec<&str> = line.split(',').collect();
                if cells.len() != header.len() {
                    return Err(Error::format(
                        &path,
                        format!(
                            "row {} has {} cells, the header {}",
                            k + 2,
                            cells.len(),
                            header.len()
                        ),
                    ));
                }
                cells
                    .iter()
                    .map(|c| match c.is_empty() {
                        true => Ok(f64::NAN),
                        false => c.parse().map_err(|_| {
                            Error::format(&path, format!("row {}: {c:?} is not a number", k + 2))
                        }),
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(Self { header, rows })
    }

    /// (step, value) of column `name` where it has a value.
    fn curve(&self, name: &str) -> Vec<(f64, f64)> {
        let Some(k) = self.header.iter().position(|h| h == name) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| (r[0], r[k]))
            .filter(|p| p.0 > 0.0 && p.1.is_finite() && p.1 > 0.0)
            .collect()
    }
}

/// The run's losses against the step: the batch loss (thin), the training
/// (solid) and held-out (dashed) losses on fixed draws; then the same two
/// per noise-level band, one colour per band.
pub fn run_loss_charts(run: &Path) -> Result<[LineChart; 2]> {
    let metrics = Metrics::read(run)?;
    let line = |label: &str, column: &str, color, dashed| Series {
        label: label.into(),
        points: metrics.curve(column),
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
