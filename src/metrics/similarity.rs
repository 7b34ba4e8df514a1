//! Similarities of samples (THEORY §7): cosine, cosine of mean-removed
//! vectors, and the normalised L2 distance. Each is a function of the
//! Euclidean distance between transformed rows, so one exact GEMM-based
//! nearest-neighbour search serves all three.

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use super::{nearest_two, Neighbours, DEFAULT_CHUNK};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Similarity {
    /// a.b / (|a| |b|); higher is closer.
    Cosine,
    /// Cosine of a - mean(a) and b - mean(b), each vector's own coordinate
    /// mean removed (Pearson correlation); higher is closer.
    CenteredCosine,
    /// |a - b| / sqrt(n): root-mean-square coordinate difference; lower is closer.
    NormalizedL2,
}

impl Similarity {
    pub fn name(&self) -> &'static str {
        match self {
            Similarity::Cosine => "cosine",
            Similarity::CenteredCosine => "centered-cosine",
            Similarity::NormalizedL2 => "normalized-l2",
        }
    }

    /// Whether a larger value means more alike (false for the distance).
    pub fn higher_is_closer(&self) -> bool {
        !matches!(self, Similarity::NormalizedL2)
    }

    /// Whether `value` counts as a match at threshold `tau`: value > tau for
    /// similarities, value < tau for the distance.
    pub fn matches(&self, value: f64, tau: f64) -> bool {
        match self.higher_is_closer() {
            true => value > tau,
            false => value < tau,
        }
    }

    /// Rows mapped so that the measure depends only on the Euclidean distance
    /// d between mapped rows: unit vectors (cosine = 1 - d^2 / 2) or rows
    /// divided by sqrt(n) (normalised L2 = d). `what` names the rows in errors.
    fn transform(&self, rows: &Tensor, what: &str) -> Result<Tensor> {
        let x = rows.to_dtype(DType::F64)?;
        let n = x.dim(1)? as f64;
        let x = match self {
            Similarity::CenteredCosine => x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?,
            _ => x,
        };
        if !self.higher_is_closer() {
            return Ok((x / n.sqrt())?.to_dtype(rows.dtype())?);
        }
        let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        if let Some(k) = norms
            .flatten_all()?
            .to_vec1::<f64>()?
            .iter()
            .position(|&v| v == 0.0)
        {
            return Err(Error::invalid(
                format!("row {k} of {what}"),
                "a zero vector",
                format!("{} is undefined for it", self.name()),
            ));
        }
        Ok(x.broadcast_div(&norms)?.to_dtype(rows.dtype())?)
    }

    fn similarity_at_distance(&self, d: f64) -> f64 {
        match self.higher_is_closer() {
            true => 1.0 - d * d / 2.0,
            false => d,
        }
    }

    /// The measure between row j of `a` and row j of `b`.
    pub fn paired(&self, a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
        if a.dims() != b.dims() || a.rank() != 2 {
            return Err(Error::shape(
                "paired rows",
                format!("{:?} twice", a.dims()),
                format!("{:?}", b.dims()),
            ));
        }
        let (a, b) = (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?);
        let (ta, tb) = (self.transform(&a, "A")?, self.transform(&b, "B")?);
        let d = (ta - tb)?.sqr()?.sum(D::Minus1)?.sqrt()?;
        Ok(d.to_vec1::<f64>()?
            .into_iter()
            .map(|d| self.similarity_at_distance(d))
            .collect())
    }

    /// Each sample's two closest training rows under this measure, and the
    /// measure to the closest: exact, by chunked GEMM.
    pub fn closest(&self, samples: &Tensor, train: &Tensor) -> Result<(Neighbours, Vec<f64>)> {
        let nn = nearest_two(
            &self.transform(samples, "the samples")?,
            &self.transform(train, "the training set")?,
            DEFAULT_CHUNK,
        )?;
        let best = nn
            .nearest_distance
            .iter()
            .map(|&d| self.similarity_at_distance(d))
            .collect();
        Ok((nn, best))
    }
}

/// The coefficient of determination of each row of `other` as a prediction
/// of the same row of `reference` (THEORY §12, Kamb and Ganguli's r^2):
/// 1 - sum (o - r)^2 / sum (r - mean r)^2, the mean over the row's coordinates.
pub fn r_squared(reference: &Tensor, other: &Tensor) -> Result<Vec<f64>> {
    if reference.dims() != other.dims() || reference.rank() != 2 {
        return Err(Error::shape(
            "r^2 rows",
            format!("{:?} twice", reference.dims()),
            format!("{:?}", other.dims()),
        ));
    }
    let (r, o) = (reference.to_dtype(DType::F64)?, other.to_dtype(DType::F64)?);
    let residual = (&o - &r)?.sqr()?.sum(D::Minus1)?.to_vec1::<f64>()?;
    let spread = r
        .broadcast_sub(&r.mean_keepdim(D::Minus1)?)?
        .sqr()?
        .sum(D::Minus1)?;
    let spread = spread.to_vec1::<f64>()?;
    if let Some(k) = spread.iter().position(|&s| s == 0.0) {
        return Err(Error::invalid(
            format!("reference row {k}"),
            "constant",
            "r^2 is undefined for it",
        ));
    }
    Ok(residual
        .iter()
        .zip(&spread)
        .map(|(e, s)| 1.0 - e / s)
        .collect())
}
