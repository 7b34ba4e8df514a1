//! Preconditioning (THEORY §3, §9): any network becomes a denoiser
//! D(x; sigma) = c_skip x + c_out F(c_in x, c_noise), with the scalings of
//! its training framework, and the framework's weighted denoising loss.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::Network;
use crate::denoise::jacobian::jacobian_autodiff;
use crate::denoise::Denoiser;
use crate::error::check_sigma;
use crate::framework::{Parameterisation, Scalings};
use crate::{Error, Result};

/// A network with its framework's input/output scalings; implements [`Denoiser`].
pub struct Precond {
    net: Box<dyn Network>,
    framework: Arc<dyn Parameterisation>,
    input_shape: Vec<usize>,
    /// Where the weights live; [`Denoiser`] calls move their input here and back.
    device: Device,
    /// The class count of a class-conditional network (THEORY §10).
    classes: Option<usize>,
}

impl Precond {
    /// Wraps `net`, whose examples have `input_shape` (see
    /// [`super::Arch::input_shape`]) and whose weights are on `device`.
    pub fn new(
        net: Box<dyn Network>,
        framework: Arc<dyn Parameterisation>,
        input_shape: Vec<usize>,
        device: &Device,
    ) -> Self {
        Precond {
            net,
            framework,
            input_shape,
            device: device.clone(),
            classes: None,
        }
    }

    /// The same network, known to take labels 0..classes (None: no labels).
    pub fn with_classes(self, classes: Option<usize>) -> Self {
        Precond { classes, ..self }
    }

    /// The class count of a class-conditional network.
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// The training framework whose scalings it applies (THEORY §9).
    pub fn framework(&self) -> &dyn Parameterisation {
        self.framework.as_ref()
    }

    /// The shape of one example, as the network takes it.
    pub(crate) fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The network it scales.
    pub(crate) fn network(&self) -> &dyn Network {
        self.net.as_ref()
    }

    /// D(x; sigma_b) for each example b of `x` `[B, ...]` (any shape with B rows
    /// of `dim()` values) at its own noise level `sigma` `[B]`, with the
    /// framework's c_skip, c_out, c_in, c_noise (THEORY §3, §9). `labels` \[B\]
    /// condition a class-conditional network (THEORY §10).
    pub fn forward(&self, x: &Tensor, sigma: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let scalings = self.framework.scalings(sigma)?;
        let lead = [x.dim(0)?];
        precondition(
            self.net.as_ref(),
            &self.input_shape,
            x,
            &lead,
            scalings,
            labels,
        )
    }
}

/// D(x) = c_skip x + c_out F(c_in x, c_noise) (THEORY §3, §9) for the rows
/// of `x`, each with its own scalings \[rows\], the network `net` given its
/// input shaped `lead` + `input_shape` (lead: \[B\], or \[K, B\] for K
/// models stacked) and c_noise shaped `lead`.
pub(crate) fn precondition(
    net: &dyn Network,
    input_shape: &[usize],
    x: &Tensor,
    lead: &[usize],
    scalings: Scalings,
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    let b = x.dim(0)?;
    let mut shape = vec![b];
    shape.extend(input_shape);
    let xs = x.reshape(shape.as_slice())?;
    let column = |t: Tensor| -> Result<Tensor> {
        let mut dims = vec![b];
        dims.resize(shape.len(), 1);
        Ok(t.reshape(dims)?)
    };
    let c_skip = column(scalings.c_skip)?;
    let c_out = column(scalings.c_out)?;
    let c_in = column(scalings.c_in)?;
    let mut net_shape = lead.to_vec();
    net_shape.extend(input_shape);
    let net_input = xs.broadcast_mul(&c_in)?.reshape(net_shape)?;
    let f = net.forward(&net_input, &scalings.c_noise.reshape(lead)?, labels)?;
    let d = (xs.broadcast_mul(&c_skip)? + f.reshape(xs.shape())?.broadcast_mul(&c_out)?)?;
    Ok(d.reshape(x.shape())?)
}

/// What the training losses need of a model: its denoiser on a batch of rows
/// at their own noise levels, and its framework's loss weight per row. A
/// [`Precond`], or models trained together (`train::together`).
pub trait Preconditioned {
    /// D(x; sigma_b) for each row b of `x` `[B, ...]`, `sigma` `[B]`.
    fn forward(&self, x: &Tensor, sigma: &Tensor, labels: Option<&Tensor>) -> Result<Tensor>;
    /// lambda(sigma_b) `[B]` (THEORY §9).
    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor>;
}

impl Preconditioned for Precond {
    fn forward(&self, x: &Tensor, sigma: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        Precond::forward(self, x, sigma, labels)
    }

    fn loss_weight(&self, sigma: &Tensor) -> Result<Tensor> {
        self.framework.loss_weight(sigma)
    }
}

impl Precond {
    /// D(x; sigma) at one noise level for every row of `x`, all rows given
    /// `class` (None: no class), computed in the network's dtype (f32) on its
    /// device and returned in the dtype and device of `x`.
    fn denoise_as(&self, x: &Tensor, sigma: f64, class: Option<u32>) -> Result<Tensor> {
        check_sigma(sigma)?;
        let b = x.dims().first().copied().unwrap_or(0);
        if x.rank() < 2 || x.elem_count() != b * self.dim() {
            return Err(Error::shape(
                "model denoiser input",
                format!("[B, {}] or [B, {:?}]", self.dim(), self.input_shape),
                format!("{:?}", x.dims()),
            ));
        }
        let sigmas = Tensor::full(sigma as f32, b, &self.device)?;
        let labels = class
            .map(|c| Tensor::full(c, b, &self.device))
            .transpose()?;
        let xs = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        let d = self.forward(&xs, &sigmas, labels.as_ref())?;
        Ok(d.to_device(x.device())?.to_dtype(x.dtype())?)
    }
}

impl Denoiser for Precond {
    /// Computes in the network's dtype (f32) on its device, and returns the
    /// dtype and device of `x`.
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        self.denoise_as(x, sigma, None)
    }

    fn dim(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// By reverse-mode autodiff through the network, in f32 on its device.
    fn jacobian(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        let on_device = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        let j = jacobian_autodiff(self, &on_device, sigma)?;
        Ok(j.to_device(x.device())?.to_dtype(x.dtype())?)
    }

    fn jacobian_method(&self) -> &'static str {
        "autodiff"
    }
}

/// The denoising loss (THEORY §3, §9) on clean examples `y` `[B, ...]` with
/// noise levels `sigma` `[B]` and standard-normal `z` shaped like `y`:
/// mean_b lambda(sigma_b) mean_i (D(y_b + sigma_b z_b; sigma_b) - y_b)_i^2,
/// lambda the framework's weight (EDM's (sigma^2 + sd^2) / (sigma sd)^2).
/// Averaging over the coordinates i (as EDM does) keeps the loss scale
/// independent of n.
pub fn denoising_loss(
    model: &dyn Preconditioned,
    y: &Tensor,
    sigma: &Tensor,
    z: &Tensor,
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    Ok(weighted_errors(model, y, sigma, z, y, labels)?.mean_all()?)
}

/// The loss's terms per example, `[B]`: lambda(sigma_b) mean_i (D(y_b +
/// sigma_b z_b; sigma_b) - t_b)_i^2 for the regression target `target`
/// shaped like `y` (y itself, or the empirical denoiser's value, THEORY §15).
pub fn weighted_errors(
    model: &dyn Preconditioned,
    y: &Tensor,
    sigma: &Tensor,
    z: &Tensor,
    target: &Tensor,
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    let b = y.dim(0)?;
    let rows = |t: &Tensor| t.reshape((b, t.elem_count() / b.max(1)));
    let (y, z, target) = (rows(y)?, rows(z)?, rows(target)?);
    let s = sigma.reshape((b, 1))?;
    let x = (&y + z.broadcast_mul(&s)?)?;
    let d = model.forward(&x, sigma, labels)?;
    let lambda = model.loss_weight(sigma)?;
    let err = (d - &target)?.sqr()?.mean(1)?;
    Ok((err * lambda)?)
}

/// The consistency loss's terms per example, `[B]` (THEORY §16, iCT):
/// w_b d(f(x_b; s_b), sg f(x'_b; l_b)) for the adjacent levels l_b =
/// `lower` < s_b = `sigma`, x = y + s z and, in consistency training, x' =
/// y + l z (one noise z_b for both), in distillation x' the `teacher`'s Heun
/// step from x to l ([`heun_step`]); w = 1 / (s - l), the target detached
/// from the graph (sg), d the pseudo-Huber distance sqrt(|a - b|^2 + c^2) -
/// c, c = 0.00054 sqrt(n).
pub fn consistency_errors(
    model: &Precond,
    teacher: Option<&Precond>,
    y: &Tensor,
    (sigma, lower): (&Tensor, &Tensor),
    z: &Tensor,
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    let b = y.dim(0)?;
    let rows = |t: &Tensor| t.reshape((b, t.elem_count() / b.max(1)));
    let (y, z) = (rows(y)?, rows(z)?);
    let noisy = |level: &Tensor| -> Result<Tensor> {
        Ok((&y + z.broadcast_mul(&level.reshape((b, 1))?)?)?)
    };
    let x = noisy(sigma)?;
    let lower_point = match teacher {
        None => noisy(lower)?,
        Some(teacher) => heun_step(teacher, &x, (sigma, lower), labels)?,
    };
    let target = model.forward(&lower_point, lower, labels)?.detach();
    let c = 0.00054 * (y.dim(1)? as f64).sqrt();
    let distance = (((model.forward(&x, sigma, labels)? - target)?
        .sqr()?
        .sum(1)?
        + c * c)?
        .sqrt()?
        - c)?;
    Ok((distance / (sigma - lower)?)?)
}

/// One Heun step of the probability-flow ODE dx/dsigma = (x - D(x;
/// sigma)) / sigma (THEORY §2) of `teacher` for each row of `x` `[B, n]`,
/// from its level `from` to its level `to` (both `[B]`, to > 0), EDM's
/// second-order step: Euler to `to`, then the mean of both slopes. Detached:
/// the teacher is not trained.
pub fn heun_step(
    teacher: &Precond,
    x: &Tensor,
    (from, to): (&Tensor, &Tensor),
    labels: Option<&Tensor>,
) -> Result<Tensor> {
    let b = x.dim(0)?;
    let column = |t: &Tensor| t.reshape((b, 1));
    let slope = |x: &Tensor, sigma: &Tensor| -> Result<Tensor> {
        let d = teacher.forward(x, sigma, labels)?.detach();
        Ok((x - d)?.broadcast_div(&column(sigma)?)?)
    };
    let h = column(&(to - from)?)?;
    let first = slope(x, from)?;
    let euler = (x + first.broadcast_mul(&h)?)?;
    let mean = ((first + slope(&euler, to)?)? * 0.5)?;
    Ok((x + mean.broadcast_mul(&h)?)?.detach())
}

/// A class-conditional network sampled for one class: D(x; sigma, class)
/// (THEORY §10). Its [`Denoiser`] calls pass `class` for every row.
pub struct ClassModel {
    model: Precond,
    class: u32,
}

impl ClassModel {
    pub fn new(model: Precond, class: u32) -> Result<Self> {
        match model.classes {
            Some(k) if (class as usize) < k => Ok(Self { model, class }),
            Some(k) => Err(Error::invalid(
                "class",
                class,
                format!("the network was trained on classes 0..{k}"),
            )),
            None => Err(Error::invalid(
                "class",
                class,
                "this network was trained without labels",
            )),
        }
    }
}

impl Denoiser for ClassModel {
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        self.model.denoise_as(x, sigma, Some(self.class))
    }

    fn dim(&self) -> usize {
        self.model.dim()
    }
}
