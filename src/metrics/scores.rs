//! The scores of THEORY §7, each a mean of per-sample indicators reported with
//! a bootstrap 95% interval and the settings that produced it.

use candle_core::Tensor;
use serde::Serialize;

use super::{nearest_two, Bootstrap, Similarity, DEFAULT_CHUNK};
use crate::{Error, Result};

/// One score and everything needed to reproduce it.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    pub score: &'static str,
    pub value: f64,
    pub ci95: [f64; 2],
    /// Number of samples M.
    pub m: usize,
    pub similarity: Option<&'static str>,
    pub threshold: Option<f64>,
    /// The feature map: "raw" or where the features came from.
    pub features: String,
    pub bootstrap: Bootstrap,
}

impl Score {
    /// The score of the complementary indicator, 1 - value, under a new name.
    pub fn complement(&self, name: &'static str) -> Score {
        Score {
            score: name,
            value: 1.0 - self.value,
            ci95: [1.0 - self.ci95[1], 1.0 - self.ci95[0]],
            ..self.clone()
        }
    }
}

fn score(name: &'static str, flags: &[bool], features: &str, bootstrap: Bootstrap) -> Score {
    let values: Vec<f64> = flags.iter().map(|&f| f as u8 as f64).collect();
    Score {
        score: name,
        value: values.iter().sum::<f64>() / values.len().max(1) as f64,
        ci95: bootstrap.interval(&values),
        m: values.len(),
        similarity: None,
        threshold: None,
        features: features.to_string(),
        bootstrap,
    }
}

/// RP = (1/M) sum_j 1[sim(a_j, b_j) > tau] (THEORY §7): rows of `a` and `b`
/// are samples of two models from the same initial noise j.
pub fn reproducibility(
    a: &Tensor,
    b: &Tensor,
    similarity: Similarity,
    tau: f64,
    features: &str,
    bootstrap: Bootstrap,
) -> Result<Score> {
    if a.dims() != b.dims() {
        return Err(Error::shape(
            "reproducibility: A and B must be paired row by row (same seeds)",
            format!("{:?}", a.dims()),
            format!("{:?}", b.dims()),
        ));
    }
    let flags: Vec<bool> = similarity
        .paired(a, b)?
        .into_iter()
        .map(|s| similarity.matches(s, tau))
        .collect();
    Ok(Score {
        similarity: Some(similarity.name()),
        threshold: Some(tau),
        ..score("reproducibility", &flags, features, bootstrap)
    })
}

/// GL = (1/M) sum_j 1[max_i sim(x_j, y_i) <= tau], and the memorization
/// fraction 1 - GL, named separately (THEORY §7).
pub fn generalization(
    samples: &Tensor,
    train: &Tensor,
    similarity: Similarity,
    tau: f64,
    features: &str,
    bootstrap: Bootstrap,
) -> Result<[Score; 2]> {
    let (_, best) = similarity.closest(samples, train)?;
    let general: Vec<bool> = best.iter().map(|&s| !similarity.matches(s, tau)).collect();
    let general = Score {
        similarity: Some(similarity.name()),
        threshold: Some(tau),
        ..score("generalization", &general, features, bootstrap)
    };
    let memorized = general.complement("memorization (1 - generalization)");
    Ok([general, memorized])
}

/// Fraction of samples whose nearest training point is under a third of the
/// distance to the second nearest (THEORY §7).
pub fn ratio_memorization(
    samples: &Tensor,
    train: &Tensor,
    features: &str,
    bootstrap: Bootstrap,
) -> Result<Score> {
    let flags = nearest_two(samples, train, DEFAULT_CHUNK)?.ratio_memorized();
    Ok(score(
        "ratio memorization (d1/d2 < 1/3)",
        &flags,
        features,
        bootstrap,
    ))
}

/// Fraction of samples whose nearest training point carries the class they
/// were drawn for: `wanted[j]` for sample j, `labels` one per training row.
/// How well a conditional denoiser obeys its class (THEORY §10).
pub fn class_agreement(
    samples: &Tensor,
    train: &Tensor,
    labels: &[u32],
    wanted: &[u32],
    bootstrap: Bootstrap,
) -> Result<Score> {
    if labels.len() != train.dim(0)? || wanted.len() != samples.dim(0)? {
        return Err(Error::shape(
            "class agreement: one label per training row and per sample",
            format!("{} and {}", train.dim(0)?, samples.dim(0)?),
            format!("{} and {}", labels.len(), wanted.len()),
        ));
    }
    let nearest = nearest_two(samples, train, DEFAULT_CHUNK)?.nearest;
    let flags: Vec<bool> = nearest
        .iter()
        .zip(wanted)
        .map(|(&i, &class)| labels[i] == class)
        .collect();
    Ok(score(
        "class agreement (nearest training point)",
        &flags,
        "raw",
        bootstrap,
    ))
}
