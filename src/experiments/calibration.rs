//! Calibrating a patch denoiser's k(sigma) against a trained network (THEORY
//! §12): along the network's own deterministic trajectory, each step keeps
//! the patch size whose score (D - x) / sigma^2 is most like the network's.

use std::path::Path;

use candle_core::Tensor;

use crate::denoise::{Denoiser, PatchDenoiser, PatchKind, PatchSize};
use crate::io::write_atomic;
use crate::jobs::progress_bar;
use crate::metrics::Similarity;
use crate::sample::{sample, Integrator};
use crate::{Error, Result};

/// The chosen size per step and every candidate's mean similarity.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub sizes: Vec<usize>,
    pub similarity: Similarity,
    pub steps: Vec<CalibratedStep>,
}

#[derive(Clone, Debug)]
pub struct CalibratedStep {
    pub sigma: f64,
    /// The best size at this step.
    pub k: usize,
    /// Per candidate size, the mean over samples of the similarity between
    /// the candidate's score and the network's.
    pub scores: Vec<f64>,
}

/// Runs `model` from `start` through `sigmas` with `integrator` and, at each
/// of its evaluations, scores every size in `sizes` of the patch denoiser
/// `kind` over `train` (`[N, C, H, W]`): `similarity` between D_k - x and
/// D_model - x, averaged over the rows. The cosine compares scores; the
/// normalized L2 distance ranks sizes as the L2 gap of the scores would.
pub fn calibrate_patches(
    model: &dyn Denoiser,
    kind: PatchKind,
    train: &Tensor,
    sizes: &[usize],
    (start, sigmas): (&Tensor, &[f64]),
    integrator: &dyn Integrator,
    similarity: Similarity,
) -> Result<Calibration> {
    if sizes.is_empty() {
        return Err(Error::invalid(
            "patch sizes",
            "none",
            "list at least one odd size",
        ));
    }
    let candidates: Vec<PatchDenoiser> = (sizes.iter())
        .map(|&k| PatchDenoiser::new(kind, train, PatchSize::Fixed(k)))
        .collect::<Result<_>>()?;
    if model.dim() != candidates[0].dim() {
        return Err(Error::shape(
            "model dimension",
            candidates[0].dim(),
            model.dim(),
        ));
    }
    // The trajectory first, then the candidates at each of its steps.
    let mut visited: Vec<(f64, Tensor, Tensor)> = Vec::new();
    let mut record = |step: &crate::sample::Step<'_>| {
        visited.push((step.sigma, step.x.clone(), step.denoised.clone()));
        Ok(())
    };
    let mut streams = Vec::new();
    sample(
        model,
        start,
        sigmas,
        integrator,
        &mut streams,
        Some(&mut record),
    )?;
    let bar = progress_bar((visited.len() * sizes.len()) as u64, "patch scores");
    let mut steps = Vec::with_capacity(visited.len());
    for (sigma, x, denoised) in visited {
        let own = (&denoised - &x)?;
        let mut scores = Vec::with_capacity(sizes.len());
        for candidate in &candidates {
            let theirs = (candidate.denoise(&x, sigma)? - &x)?;
            let per_row = similarity.paired(&theirs, &own)?;
            scores.push(per_row.iter().sum::<f64>() / per_row.len() as f64);
            bar.inc(1);
        }
        let better = |a: f64, b: f64| match similarity.higher_is_closer() {
            true => a > b,
            false => a < b,
        };
        let best = (1..sizes.len()).fold(0, |best, j| match better(scores[j], scores[best]) {
            true => j,
            false => best,
        });
        steps.push(CalibratedStep {
            sigma,
            k: sizes[best],
            scores,
        });
    }
    bar.finish_and_clear();
    Ok(Calibration {
        sizes: sizes.to_vec(),
        similarity,
        steps,
    })
}

impl Calibration {
    /// The schedule k(sigma) the calibration chose.
    pub fn schedule(&self) -> PatchSize {
        PatchSize::Table(self.steps.iter().map(|s| (s.sigma, s.k)).collect())
    }

    /// A schedule file any spec can name: `sigma,k,score` and a column
    /// `k<size>` per candidate (THEORY §12); [`PatchSize::read`] reads it.
    pub fn write(&self, path: &Path) -> Result<()> {
        let columns: Vec<String> = self.sizes.iter().map(|k| format!("k{k}")).collect();
        let mut text = format!("sigma,k,{},{}\n", self.similarity.name(), columns.join(","));
        for step in &self.steps {
            let best = self
                .sizes
                .iter()
                .position(|&k| k == step.k)
                .expect("k is a candidate");
            let scores: Vec<String> = step.scores.iter().map(|s| format!("{s:.6}")).collect();
            let (sigma, k, score) = (step.sigma, step.k, step.scores[best]);
            text.push_str(&format!("{sigma},{k},{score:.6},{}\n", scores.join(",")));
        }
        write_atomic(path, text.as_bytes())
    }
}
