//! A network's named parameters, initialised from our seeded streams.
//!
//! candle's CPU random generator cannot be seeded, so candle-nn layers get
//! their weights from [`Params`], a `VarBuilder` backend that draws each
//! tensor from stream `(seed, Weights, hash(name))`. A tensor's initial value
//! therefore depends only on the seed and its name: never on the order in
//! which layers are built, the device or the thread count.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::{Init, VarBuilder};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::rng::{stream, Purpose};
use crate::{Error, Result};

/// Named trainable tensors, shared by every clone (all clones see the same vars).
#[derive(Clone)]
pub struct Params {
    seed: u64,
    vars: Arc<Mutex<BTreeMap<String, Var>>>,
    /// Values a build takes instead of drawing them (a checkpoint's, and the
    /// file they came from), so that a corrupt config cannot make it
    /// allocate more than the checkpoint holds.
    preloaded: Option<Arc<(BTreeMap<String, Tensor>, String)>>,
}

impl Params {
    /// An empty store whose tensors will be drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Params {
            seed,
            vars: Arc::new(Mutex::new(BTreeMap::new())),
            preloaded: None,
        }
    }

    /// An empty store whose tensors will be `values` (read from `source`):
    /// a build asking for a name or shape they lack fails, naming it.
    /// [`Params::check_complete`] then checks that it used them all.
    pub fn preloaded(values: BTreeMap<String, Tensor>, source: &str) -> Self {
        Params {
            preloaded: Some(Arc::new((values, source.to_string()))),
            ..Params::new(0)
        }
    }

    /// For a preloaded store: an error unless the build took every value.
    pub fn check_complete(&self) -> Result<()> {
        match &self.preloaded {
            Some(pre) => check_count(self.named().len(), pre.0.len(), &pre.1),
            None => Ok(()),
        }
    }

    /// A `VarBuilder` that creates missing tensors in this store.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// Every parameter, sorted by name (the order the optimizer and checkpoints use).
    pub fn named(&self) -> Vec<(String, Var)> {
        let vars = self.vars.lock().expect("parameter store poisoned");
        vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The number of scalar parameters.
    pub fn count(&self) -> usize {
        self.named().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Overwrites every parameter with the tensor of the same name in `values`
    /// (e.g. read from a checkpoint); names and shapes must match exactly.
    pub fn assign(&self, values: &BTreeMap<String, Tensor>, source: &str) -> Result<()> {
        assign_named(&self.named(), values, source)
    }

    /// An independent store holding copies of the current values (same seed, same names).
    pub fn copy(&self) -> Result<Params> {
        let vars = self
            .named()
            .into_iter()
            .map(|(name, var)| Ok((name, Var::from_tensor(&var.as_tensor().copy()?)?)))
            .collect::<Result<_>>()?;
        Ok(Params {
            seed: self.seed,
            vars: Arc::new(Mutex::new(vars)),
            preloaded: None,
        })
    }
}

/// Sets each named variable to the tensor of the same name in `values`, which
/// must hold exactly those names with the same shapes; `source` names the
/// file in errors.
pub fn assign_named(
    named: &[(String, Var)],
    values: &BTreeMap<String, Tensor>,
    source: &str,
) -> Result<()> {
    check_count(named.len(), values.len(), source)?;
    for (name, var) in named {
        let value = values
            .get(name)
            .ok_or_else(|| Error::shape(format!("tensors in {source}"), name, "no such tensor"))?;
        if value.dims() != var.dims() {
            return Err(Error::shape(
                format!("tensor {name} in {source}"),
                format!("{:?}", var.dims()),
                format!("{:?}", value.dims()),
            ));
        }
        var.set(&value.to_dtype(var.dtype())?.to_device(var.device())?)?;
    }
    Ok(())
}

/// An error unless `source` holds as many tensors as the network has.
fn check_count(expected: usize, found: usize, source: &str) -> Result<()> {
    match expected == found {
        true => Ok(()),
        false => Err(Error::shape(
            format!("tensors in {source}"),
            format!("{expected} tensors"),
            format!("{found} tensors"),
        )),
    }
}

/// FNV-1a hash of a parameter name: its stream index.
fn name_index(name: &str) -> u64 {
    name.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Initial values for a tensor of `shape` following candle-nn's `Init` hint.
fn initial_values(init: Init, shape: &Shape, seed: u64, name: &str) -> Vec<f64> {
    let n = shape.elem_count();
    let mut rng = stream(seed, Purpose::Weights, name_index(name));
    let mut normal = |mean: f64, std: f64| -> Vec<f64> {
        (0..n)
            .map(|_| {
                mean + std * {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    z
                }
            })
            .collect()
    };
    let mut rng = stream(seed, Purpose::Weights, name_index(name));
    let mut uniform = |lo: f64, up: f64| -> Vec<f64> {
        (0..n).map(|_| lo + (up - lo) * rng.gen::<f64>()).collect()
    };
    match init {
        Init::Const(c) => vec![c; n],
        Init::Randn { mean, stdev } => normal(mean, stdev),
        Init::Uniform { lo, up } => uniform(lo, up),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(0.0, std),
                NormalOrUniform::Uniform => uniform(-3f64.sqrt() * std, 3f64.sqrt() * std),
            }
        }
    }
}

impl candle_nn::var_builder::SimpleBackend for Params {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self.vars.lock().expect("parameter store poisoned");
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "parameter {name} requested with shape {shape:?} but exists with {:?}",
                    var.shape()
                );
            }
            return Ok(var.as_tensor().clone());
        }
        let tensor = match &self.preloaded {
            Some(pre) => {
                let (values, source) = &**pre;
                match values.get(name) {
                    Some(value) if value.dims() == shape.dims() => value.clone(),
                    Some(value) => candle_core::bail!(
                        "tensor {name} in {source}: expected shape {:?}, got {:?}",
                        shape.dims(),
                        value.dims()
                    ),
                    None => candle_core::bail!("{source} has no tensor {name}"),
                }
            }
            None => {
                let values = initial_values(init, &shape, self.seed, name);
                Tensor::from_vec(values, shape, &Device::Cpu)?
            }
        }
        .to_dtype(dtype)?
        .to_device(device)?;
        let var = Var::from_tensor(&tensor)?;
        vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        let vars = self.vars.lock().expect("parameter store poisoned");
        match vars.get(name) {
            Some(var) => Ok(var.as_tensor().clone()),
            None => candle_core::bail!("no parameter named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars
            .lock()
            .expect("parameter store poisoned")
            .contains_key(name)
    }
}
