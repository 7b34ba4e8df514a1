//! The patch size k(sigma) of a patch denoiser (THEORY §12): one odd k, a
//! table of (sigma, k) such as `regimes calibrate-patches` writes, or any
//! function of sigma.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::io::read;
use crate::{Error, Result};

/// k as a function of the noise level.
#[derive(Clone)]
pub enum PatchSize {
    Fixed(usize),
    /// (sigma, k) pairs; a noise level takes the k of the nearest sigma in ln sigma.
    Table(Vec<(f64, usize)>),
    Function(Arc<dyn Fn(f64) -> usize + Send + Sync>),
}

impl fmt::Debug for PatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchSize::Fixed(k) => write!(f, "Fixed({k})"),
            PatchSize::Table(t) => write!(f, "Table({t:?})"),
            PatchSize::Function(_) => write!(f, "Function"),
        }
    }
}

impl PatchSize {
    /// An odd patch size (`5`) or a schedule file (`schedule.csv`).
    pub fn parse(text: &str) -> Result<Self> {
        match text.parse::<usize>() {
            Ok(k) => Ok(PatchSize::Fixed(check_odd(k, || text.to_string())?)),
            Err(_) => Self::read(Path::new(text)),
        }
    }

    /// The k at noise level `sigma` (odd, checked).
    pub fn at(&self, sigma: f64) -> Result<usize> {
        let k = match self {
            PatchSize::Fixed(k) => *k,
            PatchSize::Table(table) => {
                let distance = |s: f64| (s.ln() - sigma.ln()).abs();
                let nearest = table
                    .iter()
                    .min_by(|a, b| distance(a.0).total_cmp(&distance(b.0)));
                nearest.expect("a schedule table is never empty").1
            }
            PatchSize::Function(f) => f(sigma),
        };
        check_odd(k, || format!("k({sigma})"))
    }

    /// A schedule file: CSV with a header naming columns `sigma` and `k`
    /// (others, such as calibration scores, are ignored).
    pub fn read(path: &Path) -> Result<Self> {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| Error::format(path, "a patch schedule is UTF-8 CSV"))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .collect();
        let column = |name: &str| {
            header.iter().position(|h| *h == name).ok_or_else(|| {
                Error::format(path, format!("the header needs a `{name}` column: sigma,k"))
            })
        };
        let (sigma_at, k_at) = (column("sigma")?, column("k")?);
        let mut table = Vec::new();
        for (row, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = || Error::format(path, format!("row {}: `{line}` is not sigma,k", row + 1));
            let sigma: f64 = fields
                .get(sigma_at)
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            let k: usize = fields
                .get(k_at)
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            if !(sigma.is_finite() && sigma > 0.0) {
                return Err(bad());
            }
            table.push((
                sigma,
                check_odd(k, || format!("{} row {}", path.display(), row + 1))?,
            ));
        }
        if table.is_empty() {
            return Err(Error::format(
                path,
                "a patch schedule needs at least one row",
            ));
        }
        Ok(PatchSize::Table(table))
    }
}

fn check_odd(k: usize, name: impl Fn() -> String) -> Result<usize> {
    match k % 2 {
        1 => Ok(k),
        _ => Err(Error::invalid(
            format!("patch size {}", name()),
            k,
            "must be odd and >= 1",
        )),
    }
}
