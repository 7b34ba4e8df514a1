//! Synthetic distributions: Gaussian (isotropic or with a given spectrum),
//! isotropic Gaussian mixtures and MoLRG (THEORY §5-6). Each is a [`Mixture`],
//! so it samples and knows its exact denoiser, and is saved as parameter files
//! from which that denoiser is rebuilt.
//!
//! ```
//! use diffusion_regimes::data::{Synthetic, SyntheticSpec};
//! let spec = SyntheticSpec::Molrg { ambient: 16, ranks: vec![3, 3], floor: 0.0 };
//! let dist = Synthetic::new(spec, 0).unwrap();
//! let data = dist.sample(100).unwrap();
//! assert_eq!(data.dims(), &[100, 16]);
//! ```

use candle_core::{Device, Tensor};
use faer::Mat;
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::denoise::{Component, Mixture};
use crate::linalg::{random_orthogonal, to_tensor};
use crate::rng::{standard_normal, stream, Purpose};
use crate::{Error, Result};

/// The first row index of fresh draws: every training set and data file holds
/// rows below it, so rows from here on are new to every model.
pub const FRESH_ROWS: usize = 1 << 40;

/// Covariance spectrum of a synthetic Gaussian.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Spectrum {
    /// variance * I.
    Isotropic { variance: f64 },
    /// lambda_i = scale * i^(-exponent), i = 1..n, in a random orthonormal basis.
    PowerLaw { scale: f64, exponent: f64 },
}

/// What to generate; together with a seed it determines the distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SyntheticSpec {
    /// N(0, Sigma) with the given spectrum.
    Gaussian { ambient: usize, spectrum: Spectrum },
    /// K equal-weight components N(mu_k, std^2 I), mu_k ~ N(0, mean_scale^2 I).
    Gmm {
        ambient: usize,
        components: usize,
        mean_scale: f64,
        std: f64,
    },
    /// Equal-weight N(0, U_k U_k^T + floor I), U_k orthonormal n x d_k, subspaces
    /// mutually orthogonal: column blocks of one random orthogonal matrix (THEORY §6).
    Molrg {
        ambient: usize,
        ranks: Vec<usize>,
        floor: f64,
    },
}

/// A synthetic distribution: its spec, its seed, and the mixture they define.
pub struct Synthetic {
    pub spec: SyntheticSpec,
    pub seed: u64,
    pub mixture: Mixture,
}

/// The largest ambient dimension a synthetic distribution takes: its n x n
/// orthogonal basis is then 2 GiB of f64.
pub const MAX_AMBIENT: usize = 16384;

fn positive(name: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::invalid(name, value, "must be finite and > 0"))
    }
}

impl SyntheticSpec {
    /// The dimension n of its samples.
    pub fn ambient(&self) -> usize {
        match self {
            Self::Gaussian { ambient, .. }
            | Self::Gmm { ambient, .. }
            | Self::Molrg { ambient, .. } => *ambient,
        }
    }

    /// Builds the mixture; parameters are drawn from stream (seed, Params).
    fn build(&self, seed: u64) -> Result<Mixture> {
        let mut rng = stream(seed, Purpose::Params, 0);
        let ambient = self.ambient();
        if !(1..=MAX_AMBIENT).contains(&ambient) {
            return Err(Error::invalid(
                "ambient",
                ambient,
                format!(
                    "must lie in 1..={MAX_AMBIENT} (the distributions build dense n x n bases)"
                ),
            ));
        }
        let components = match self {
            Self::Gaussian {
                spectrum: Spectrum::Isotropic { variance },
                ..
            } => vec![Component {
                weight: 1.0,
                mean: vec![0.0; ambient],
                basis: Mat::zeros(ambient, 0),
                variances: vec![],
                floor: positive("variance", *variance)?,
            }],
            Self::Gaussian {
                spectrum: Spectrum::PowerLaw { scale, exponent },
                ..
            } => {
                let scale = positive("scale", *scale)?;
                if !exponent.is_finite() {
                    return Err(Error::invalid("exponent", exponent, "must be finite"));
                }
                vec![Component {
                    weight: 1.0,
                    mean: vec![0.0; ambient],
                    basis: random_orthogonal(ambient, &mut rng),
                    variances: (1..=ambient)
                        .map(|i| scale * (i as f64).powf(-exponent))
                        .collect(),
                    floor: 0.0,
                }]
            }
            Self::Gmm {
                components,
                mean_scale,
                std,
                ..
            } => gmm_components(ambient, *components, *mean_scale, *std, &mut rng)?,
            Self::Molrg { ranks, floor, .. } => molrg_components(ambient, ranks, *floor, &mut rng)?,
        };
        Mixture::new(components)
    }
}

impl Synthetic {
    pub fn new(spec: SyntheticSpec, seed: u64) -> Result<Self> {
        let mixture = spec.build(seed)?;
        Ok(Self {
            spec,
            seed,
            mixture,
        })
    }

    /// Rows 0..count of the data set, [count, n] f64: row i is drawn from stream
    /// (seed, Data, i) alone, so a smaller data set is a prefix of a larger one.
    pub fn sample(&self, count: usize) -> Result<Tensor> {
        self.sample_rows(0, count)
    }

    /// `count` fresh rows: exact draws of the distribution that no training
    /// set holds (they start at row [`FRESH_ROWS`]).
    pub fn sample_fresh(&self, count: usize) -> Result<Tensor> {
        self.sample_rows(FRESH_ROWS, count)
    }

    /// Rows start..start + count: y = mu_k + V_k (sqrt(lambda_k) * z) + delta_k z',
    /// with the component k and the draws z, z' of row i from stream (seed, Data, i).
    /// The low-rank products run as one GEMM per component.
    pub fn sample_rows(&self, start: usize, count: usize) -> Result<Tensor> {
        let comps = self.mixture.components();
        let n = self.mixture_dim();
        let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); comps.len()];
        let mut coords: Vec<Vec<f64>> = vec![Vec::new(); comps.len()];
        let mut out = vec![0.0f64; count * n];
        for (row, y) in out.chunks_exact_mut(n).enumerate() {
            let mut rng = stream(self.seed, Purpose::Data, (start + row) as u64);
            let k = self.component_of(rng.gen());
            let c = &comps[k];
            let z = standard_normal(&mut rng, c.variances.len());
            coords[k].extend(z.iter().zip(&c.variances).map(|(z, l)| z * l.sqrt()));
            rows_of[k].push(row);
            let floor_noise = standard_normal(&mut rng, if c.floor > 0.0 { n } else { 0 });
            for (i, value) in y.iter_mut().enumerate() {
                *value = c.mean[i] + floor_noise.get(i).map_or(0.0, |e| c.floor.sqrt() * e);
            }
        }
        for (k, c) in comps.iter().enumerate() {
            let r = c.variances.len();
            if r == 0 || rows_of[k].is_empty() {
                continue;
            }
            let z = Tensor::from_slice(&coords[k], (rows_of[k].len(), r), &Device::Cpu)?;
            let in_span = z.matmul(&to_tensor(&c.basis)?.t()?)?.to_vec2::<f64>()?;
            for (&row, span) in rows_of[k].iter().zip(in_span) {
                out[row * n..(row + 1) * n]
                    .iter_mut()
                    .zip(span)
                    .for_each(|(y, s)| *y += s);
            }
        }
        Ok(Tensor::from_vec(out, (count, n), &Device::Cpu)?)
    }

    /// The component each of rows start..start + count is drawn from, its
    /// class label (THEORY §10): the first draw of the row's stream.
    pub fn labels(&self, start: usize, count: usize) -> Vec<u32> {
        (start..start + count)
            .map(|row| {
                let mut rng = stream(self.seed, Purpose::Data, row as u64);
                self.component_of(rng.gen()) as u32
            })
            .collect()
    }

    /// The component whose cumulative weight first exceeds the uniform `u`.
    fn component_of(&self, u: f64) -> usize {
        let comps = self.mixture.components();
        let mut k = 0;
        let mut cumulative = comps[0].weight;
        while u >= cumulative && k + 1 < comps.len() {
            k += 1;
            cumulative += comps[k].weight;
        }
        k
    }

    fn mixture_dim(&self) -> usize {
        self.mixture.components()[0].mean.len()
    }
}

/// K isotropic components with means drawn from N(0, mean_scale^2 I) (THEORY §6).
fn gmm_components(
    ambient: usize,
    components: usize,
    mean_scale: f64,
    std: f64,
    rng: &mut ChaCha20Rng,
) -> Result<Vec<Component>> {
    if !(1..=MAX_AMBIENT).contains(&components) {
        return Err(Error::invalid(
            "components",
            components,
            format!("must lie in 1..={MAX_AMBIENT}"),
        ));
    }
    let floor = positive("std", std)?.powi(2);
    Ok((0..components)
        .map(|_| Component {
            weight: 1.0 / components as f64,
            mean: standard_normal(rng, ambient)
                .iter()
                .map(|z| z * mean_scale)
                .collect(),
            basis: Mat::zeros(ambient, 0),
            variances: vec![],
            floor,
        })
        .collect())
}

/// Orthogonal subspaces of the given ranks, unit variance within each (THEORY §6).
fn molrg_components(
    ambient: usize,
    ranks: &[usize],
    floor: f64,
    rng: &mut ChaCha20Rng,
) -> Result<Vec<Component>> {
    let total: usize = ranks.iter().sum();
    if ranks.is_empty() || ranks.contains(&0) || total > ambient {
        return Err(Error::invalid(
            "ranks",
            format!("{ranks:?}"),
            format!("need at least one rank, each >= 1, summing to at most ambient = {ambient}"),
        ));
    }
    if !(floor.is_finite() && floor >= 0.0) {
        return Err(Error::invalid("floor", floor, "must be finite and >= 0"));
    }
    let q = random_orthogonal(ambient, rng);
    let mut start = 0;
    Ok(ranks
        .iter()
        .map(|&d| {
            let basis = q.subcols(start, d).to_owned();
            start += d;
            Component {
                weight: 1.0 / ranks.len() as f64,
                mean: vec![0.0; ambient],
                basis,
                variances: vec![1.0; d],
                floor,
            }
        })
        .collect())
}
