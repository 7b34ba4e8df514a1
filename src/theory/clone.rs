//! Measuring the regime levels with the empirical denoiser (THEORY §8):
//! the clone test and the level at which a trajectory's nearest training
//! point stops changing.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::denoise::{Denoiser, EmpiricalDenoiser};
use crate::metrics::{nearest_two, DEFAULT_CHUNK};
use crate::rng::{normal_rows, stream, Purpose};
use crate::sample::{sample, Method, Step};
use crate::{Error, Result};

/// The clone test's result: for each clone level, the fraction of pairs that
/// end on the same training point and, with classes, in the same class.
#[derive(Clone, Debug, Serialize)]
pub struct CloneCurve {
    pub sigmas: Vec<f64>,
    pub same_point: Vec<f64>,
    pub same_class: Option<Vec<f64>>,
}

impl CloneCurve {
    /// The largest clone level at which `fraction` reaches `level`, by
    /// interpolation in ln sigma between grid points (None if it never does).
    pub fn level_where(fraction: &[f64], sigmas: &[f64], level: f64) -> Option<f64> {
        // Walk from the largest sigma down: fractions rise as sigma falls.
        let mut pairs: Vec<(f64, f64)> = sigmas
            .iter()
            .copied()
            .zip(fraction.iter().copied())
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        crate::metrics::crossing(&pairs, level)
    }
}

/// The clone test (Biroli et al. 2024, THEORY §8): `trajectories` runs of the
/// reverse SDE ([`Method::Ancestral`]) over the decreasing grid `sigmas` (ending
/// at 0) with the empirical denoiser of `train`; at each grid level listed in
/// `clone_at` a run is copied and both copies continue with independent noise.
/// Trajectory j starts from sigmas\[0\] z with z and its noise from stream
/// (seed, Clone, j); the copies made at clone level c draw from streams
/// (seed, Clone, 2^32 (1 + 2c + copy) + j).
pub fn clone_test(
    train: &Tensor,
    classes: Option<&[usize]>,
    sigmas: &[f64],
    clone_at: &[usize],
    trajectories: usize,
    seed: u64,
) -> Result<CloneCurve> {
    let empirical = EmpiricalDenoiser::new(&train.to_dtype(DType::F64)?)?;
    let n = empirical.dim();
    if let Some(&bad) = clone_at.iter().find(|&&c| c + 1 >= sigmas.len()) {
        return Err(Error::invalid(
            "clone level index",
            bad,
            "must lie before the grid's last level",
        ));
    }
    if let Some(c) = classes {
        if c.len() != empirical.train_size() {
            return Err(Error::shape("classes", empirical.train_size(), c.len()));
        }
    }
    let streams = |offset: u64| -> Vec<_> {
        (0..trajectories as u64)
            .map(|j| stream(seed, Purpose::Clone, (offset << 32) + j))
            .collect()
    };
    let mut trunk_noise = streams(0);
    let mut x = (normal_rows(&mut trunk_noise, n, DType::F64, &Device::Cpu)? * sigmas[0])?;
    let ancestral = |x: &Tensor, levels: &[f64], noise: &mut [_]| match levels.len() {
        0 | 1 => Ok(x.clone()),
        _ => sample(&empirical, x, levels, &Method::Ancestral, noise, None),
    };
    let run_from = |start: usize, x: &Tensor, noise: &mut Vec<_>| -> Result<Vec<usize>> {
        let end = ancestral(x, &sigmas[start..], noise)?;
        Ok(nearest_two(&end, &empirical.train()?, DEFAULT_CHUNK)?.nearest)
    };
    let (mut same_point, mut same_class) = (Vec::new(), Vec::new());
    let mut level = 0;
    for (c, &at) in clone_at.iter().enumerate() {
        if level < at {
            x = ancestral(&x, &sigmas[level..=at], &mut trunk_noise)?;
            level = at;
        }
        let a = run_from(at, &x, &mut streams(1 + 2 * c as u64))?;
        let b = run_from(at, &x, &mut streams(2 + 2 * c as u64))?;
        let fraction = |same: &dyn Fn(usize, usize) -> bool| {
            a.iter().zip(&b).filter(|(&i, &j)| same(i, j)).count() as f64 / trajectories as f64
        };
        same_point.push(fraction(&|i, j| i == j));
        if let Some(labels) = classes {
            same_class.push(fraction(&|i, j| labels[i] == labels[j]));
        }
    }
    Ok(CloneCurve {
        sigmas: clone_at.iter().map(|&i| sigmas[i]).collect(),
        same_point,
        same_class: classes.map(|_| same_class),
    })
}

/// For each of `trajectories` runs of the reverse SDE ([`Method::Ancestral`])
/// of the empirical denoiser of `train` over `sigmas` (decreasing, ending at
/// 0), the largest noise level from which on the nearest training point of x
/// no longer changes. Run j draws from stream (seed, Clone, j), so it is the
/// trunk of [`clone_test`]'s trajectory j. (Along the deterministic flow the
/// nearest point is typically fixed from the start, so this needs the noise.)
pub fn last_switch_levels(
    train: &Tensor,
    sigmas: &[f64],
    trajectories: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let empirical = EmpiricalDenoiser::new(&train.to_dtype(DType::F64)?)?;
    let (points, n) = (empirical.train()?, empirical.dim());
    let mut noise: Vec<_> = (0..trajectories as u64)
        .map(|j| stream(seed, Purpose::Clone, j))
        .collect();
    let x = (normal_rows(&mut noise, n, DType::F64, &Device::Cpu)? * sigmas[0])?;
    // The observer keeps x at every level before its step.
    let mut visited: Vec<Tensor> = Vec::new();
    let end = sample(
        &empirical,
        &x,
        sigmas,
        &Method::Ancestral,
        &mut noise,
        Some(&mut |step: &Step<'_>| {
            visited.push(step.x.clone());
            Ok(())
        }),
    )?;
    let nearest = |x: &Tensor| Ok(nearest_two(x, &points, DEFAULT_CHUNK)?.nearest);
    let history = visited.iter().map(nearest).collect::<Result<Vec<_>>>()?;
    let last = nearest(&end)?;
    Ok((0..trajectories)
        .map(|j| {
            // Walking up from the end: the highest level whose nearest point is already the final one.
            let settled = history.iter().rev().take_while(|h| h[j] == last[j]).count();
            sigmas[history.len() - settled]
        })
        .collect())
}
