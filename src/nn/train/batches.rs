//! Each step's draws (the module docs of `train`): which examples, under
//! [`Sampling`], their noise levels and noise, and their labels.

use candle_core::Tensor;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Sampling, Trainer};
use crate::data::permutation;
use crate::rng::{stream, Purpose};
use crate::Result;

/// One training step's draws ([`Trainer::batch`]).
pub struct Batch {
    pub y: Tensor,
    pub sigma: Tensor,
    pub z: Tensor,
    /// For consistency training, each row's adjacent lower level (sigma is
    /// the upper one of the pair, THEORY §16); None for the other frameworks.
    pub lower: Option<Tensor>,
    /// The examples' labels (some dropped), for a class-conditional run.
    pub labels: Option<Tensor>,
}

impl Trainer {
    /// The training-set rows of step `step`'s batch, and the step's stream
    /// positioned after drawing them.
    fn batch_rows(&self, step: u64) -> (Vec<u32>, rand_chacha::ChaCha20Rng) {
        let c = &self.config;
        let (b, n) = (c.batch, c.n);
        let mut rng = stream(c.seed, Purpose::Batch, step);
        let rows: Vec<u32> = match c.sampling {
            Sampling::Replacement => (0..b).map(|_| rng.gen_range(0..n) as u32).collect(),
            Sampling::Epochs => {
                let first = step as usize * b;
                let mut order = (usize::MAX, Vec::new());
                (first..first + b)
                    .map(|p| {
                        let epoch = p / n;
                        if order.0 != epoch {
                            order = (
                                epoch,
                                permutation(n, &mut stream(c.seed, Purpose::Epoch, epoch as u64)),
                            );
                        }
                        order.1[p % n] as u32
                    })
                    .collect()
            }
        };
        (rows, rng)
    }

    /// Step `step`'s batch: clean examples y, noise levels sigma (for
    /// consistency training each row's pair of adjacent levels), noise z
    /// and, for a class-conditional run, the examples' labels, each dropped
    /// to "no class" (the class count) with probability p_uncond by stream
    /// (seed, LabelDropout, step), apart from the batch's own draws.
    pub fn batch(&self, step: u64) -> Result<Batch> {
        let c = &self.config;
        let b = c.batch;
        let (rows, mut rng) = self.batch_rows(step);
        let device = self.train.device();
        let y = self
            .train
            .index_select(&Tensor::new(rows.as_slice(), device)?, 0)?;
        let normal = |rng: &mut rand_chacha::ChaCha20Rng| -> f32 { StandardNormal.sample(rng) };
        let framework = self.model.framework();
        let (sigma, lower): (Vec<f32>, Option<Vec<f32>>) =
            match framework.level_pairs(step, c.steps) {
                Some(pairs) => {
                    let (lower, upper) = (0..b).map(|_| pairs.draw(&mut rng)).unzip();
                    (upper, Some(lower))
                }
                None => (
                    (0..b).map(|_| framework.draw_sigma(&mut rng)).collect(),
                    None,
                ),
            };
        let z: Vec<f32> = (0..y.elem_count()).map(|_| normal(&mut rng)).collect();
        let labels = match (&c.labels, &self.labels) {
            (Some(conditioning), Some(labels)) => {
                let mut dropout = stream(c.seed, Purpose::LabelDropout, step);
                let batch: Vec<u32> = rows
                    .iter()
                    .map(|&row| match dropout.gen::<f64>() < conditioning.p_uncond {
                        true => conditioning.classes as u32,
                        false => labels[row as usize],
                    })
                    .collect();
                Some(Tensor::new(batch.as_slice(), device)?)
            }
            _ => None,
        };
        Ok(Batch {
            sigma: Tensor::from_vec(sigma, b, device)?,
            lower: lower
                .map(|lower| Tensor::from_vec(lower, b, device))
                .transpose()?,
            z: Tensor::from_vec(z, y.shape(), device)?,
            y,
            labels,
        })
    }
}
