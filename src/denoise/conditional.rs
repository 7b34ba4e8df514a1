//! Class-conditional denoisers and classifier-free guidance in closed form
//! (THEORY §10): D(x; sigma, c) of the exact priors, and
//! D_w = (1 + w) D(x; sigma, c) - w D(x; sigma).

use candle_core::Tensor;

use super::{Component, Denoiser, Mixture};
use crate::{Error, Result};

/// The training points labelled `class` ([N, n] rows, `labels` one per row).
pub fn rows_of_class(train: &Tensor, labels: &[u32], class: u32) -> Result<Tensor> {
    if labels.len() != train.dim(0)? {
        return Err(Error::shape("labels", train.dim(0)?, labels.len()));
    }
    let picks: Vec<u32> = (0..labels.len() as u32)
        .filter(|&i| labels[i as usize] == class)
        .collect();
    if picks.is_empty() {
        let mut present: Vec<u32> = labels.to_vec();
        present.sort_unstable();
        present.dedup();
        return Err(Error::invalid(
            "class",
            class,
            format!("no training point has it; the labels hold {present:?}"),
        ));
    }
    Ok(train.index_select(&Tensor::new(picks.as_slice(), train.device())?, 0)?)
}

/// Mixture component `k` alone, reweighted to 1: the true denoiser given the
/// class (the component a row was drawn from).
pub fn component_alone(mixture: &Mixture, k: usize) -> Result<Mixture> {
    let components = mixture.components();
    let c = components.get(k).ok_or_else(|| {
        Error::invalid(
            "class",
            k,
            format!("the distribution has components 0..{}", components.len()),
        )
    })?;
    Mixture::new(vec![Component {
        weight: 1.0,
        ..c.clone()
    }])
}

/// Classifier-free guidance: (1 + w) D_c - w D_u of a conditional and an
/// unconditional denoiser; w = 0 is the conditional denoiser itself.
pub struct Guided {
    conditional: Box<dyn Denoiser>,
    unconditional: Box<dyn Denoiser>,
    weight: f64,
}

impl Guided {
    pub fn new(
        conditional: Box<dyn Denoiser>,
        unconditional: Box<dyn Denoiser>,
        weight: f64,
    ) -> Result<Self> {
        if !weight.is_finite() {
            return Err(Error::invalid("guidance weight", weight, "must be finite"));
        }
        if conditional.dim() != unconditional.dim() {
            return Err(Error::shape(
                "unconditional denoiser",
                conditional.dim(),
                unconditional.dim(),
            ));
        }
        Ok(Self {
            conditional,
            unconditional,
            weight,
        })
    }
}

impl Denoiser for Guided {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let conditional = self.conditional.denoise(x, sigma)?;
        if self.weight == 0.0 {
            return Ok(conditional);
        }
        let unconditional = self.unconditional.denoise(x, sigma)?;
        Ok(((conditional * (1.0 + self.weight))? - (unconditional * self.weight)?)?)
    }

    fn dim(&self) -> usize {
        self.conditional.dim()
    }
}
