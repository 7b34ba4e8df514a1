//! The training and held-out losses of a run on fixed draws (THEORY §15).
//!
//! P points are drawn once from stream (seed, Evaluation, 0): noise levels
//! from the framework's own training distribution, then standard-normal
//! noise. Point i pairs them with training row i mod N and with held-out row
//! i mod M, so both losses see the same noise levels and noise at every
//! evaluation and differ only in the clean examples: their gap is the
//! generalization gap, not sampling noise between two estimates.

use candle_core::{Device, Tensor};
use rand_distr::{Distribution, StandardNormal};

use super::TrainConfig;
use crate::nn::{weighted_errors, Precond};
use crate::rng::{stream, Purpose};
use crate::Result;

/// Upper edges of the noise-level bands the losses are also reported in
/// (absolute sigma, like the gap levels); the last band is sigma >= 10.
pub const BAND_EDGES: [f64; 3] = [0.1, 1.0, 10.0];

/// The bands' names in metrics.csv's columns.
pub const BAND_NAMES: [&str; 4] = ["lt0.1", "0.1-1", "1-10", "ge10"];

/// Points per forward pass, bounding the activations held at once.
const CHUNK: usize = 256;

/// One loss on the fixed draws: over all points, and per band (NaN for a
/// band no point fell in).
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    pub total: f64,
    pub bands: [f64; 4],
}

/// One evaluation: on the training rows, and on the held-out rows when the
/// run has them.
#[derive(Clone, Debug, PartialEq)]
pub struct Losses {
    pub train: Loss,
    pub heldout: Option<Loss>,
}

/// The fixed draws of a run's evaluations.
pub(crate) struct FixedDraws {
    sigma: Tensor,
    z: Tensor,
    band: Vec<usize>,
    train: Tensor,
    heldout: Option<Tensor>,
    /// "No class" for every point of a class-conditional run: the losses
    /// are the unconditional denoiser's (held-out rows carry no labels).
    labels: Option<Tensor>,
}

/// The band of noise level `sigma`.
fn band_of(sigma: f64) -> usize {
    BAND_EDGES.iter().take_while(|&&edge| sigma >= edge).count()
}

/// Rows i mod (row count) of `rows`, for i in 0..points.
fn cycled(rows: &Tensor, points: usize) -> Result<Tensor> {
    let count = rows.dim(0)? as u32;
    let index: Vec<u32> = (0..points as u32).map(|i| i % count).collect();
    Ok(rows.index_select(&Tensor::new(index.as_slice(), rows.device())?, 0)?)
}

impl FixedDraws {
    /// The draws of the run of config `c`, on its training rows `train` and
    /// `heldout` (rows of the same distribution, shaped like them); None
    /// when the config asks for no evaluation points.
    pub fn new(c: &TrainConfig, train: &Tensor, heldout: Option<&Tensor>) -> Result<Option<Self>> {
        let points = c.eval_points;
        if points == 0 {
            return Ok(None);
        }
        let device = train.device();
        let mut rng = stream(c.seed, Purpose::Evaluation, 0);
        let framework = c.parameterisation();
        let sigma: Vec<f32> = (0..points)
            .map(|_| framework.draw_sigma(&mut rng))
            .collect();
        let train = cycled(train, points)?;
        let z: Vec<f32> = (0..train.elem_count())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let labels = c
            .labels
            .as_ref()
            .map(|l| Tensor::full(l.classes as u32, points, device))
            .transpose()?;
        Ok(Some(Self {
            band: sigma.iter().map(|&s| band_of(s as f64)).collect(),
            sigma: Tensor::from_vec(sigma, points, device)?,
            z: Tensor::from_vec(z, train.shape(), device)?,
            train,
            heldout: heldout
                .map(|h| cycled(&h.to_device(device)?, points))
                .transpose()?,
            labels,
        }))
    }

    /// `model`'s losses on the training and held-out rows.
    pub fn losses(&self, model: &Precond) -> Result<Losses> {
        Ok(Losses {
            train: self.loss(model, &self.train)?,
            heldout: self
                .heldout
                .as_ref()
                .map(|rows| self.loss(model, rows))
                .transpose()?,
        })
    }

    fn loss(&self, model: &Precond, rows: &Tensor) -> Result<Loss> {
        let points = self.band.len();
        let mut terms = Vec::with_capacity(points);
        for start in (0..points).step_by(CHUNK) {
            let len = CHUNK.min(points - start);
            let y = rows.narrow(0, start, len)?;
            let labels = match &self.labels {
                Some(l) => Some(l.narrow(0, start, len)?),
                None => None,
            };
            let errors = weighted_errors(
                model,
                &y,
                &self.sigma.narrow(0, start, len)?,
                &self.z.narrow(0, start, len)?,
                &y,
                labels.as_ref(),
            )?;
            terms.extend(errors.detach().to_vec1::<f32>()?.into_iter().map(f64::from));
        }
        let mut sums = [(0.0, 0usize); 4];
        for (&band, term) in self.band.iter().zip(&terms) {
            sums[band].0 += term;
            sums[band].1 += 1;
        }
        Ok(Loss {
            total: terms.iter().sum::<f64>() / points as f64,
            bands: sums.map(|(sum, count)| match count {
                0 => f64::NAN,
                _ => sum / count as f64,
            }),
        })
    }
}

/// The held-out rows of a run folder's heldout.npy, None when it has none.
pub(crate) fn read_heldout(path: &std::path::Path, device: &Device) -> Result<Option<Tensor>> {
    match path.exists() {
        true => Ok(Some(
            crate::data::npy::read_npy(path)?
                .to_dtype(candle_core::DType::F32)?
                .to_device(device)?,
        )),
        false => Ok(None),
    }
}
