//! A synthetic distribution on disk: distribution.json (spec and seed) and
//! distribution.safetensors (each component's parameters), from which its
//! exact denoiser is rebuilt without regenerating it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::synthetic::{Synthetic, SyntheticSpec};
use crate::denoise::{Component, Mixture};
use crate::io::{read, write_atomic};
use crate::linalg::{to_mat, to_tensor};
use crate::{Error, Result};

/// File names inside a distribution folder.
pub const SPEC_FILE: &str = "distribution.json";
pub const PARAMS_FILE: &str = "distribution.safetensors";

#[derive(Serialize, Deserialize)]
struct SpecFile {
    spec: SyntheticSpec,
    seed: u64,
    components: usize,
    note: String,
}

impl Synthetic {
    /// Writes distribution.json (spec and seed) and distribution.safetensors
    /// (per component: weight, mean, basis, variances, floor) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for (k, c) in self.mixture.components().iter().enumerate() {
            let n = c.mean.len();
            let scalars = [c.weight, c.floor];
            tensors.insert(
                format!("component.{k}.weight_floor"),
                Tensor::from_slice(&scalars, 2, &Device::Cpu)?,
            );
            tensors.insert(
                format!("component.{k}.mean"),
                Tensor::from_slice(&c.mean, n, &Device::Cpu)?,
            );
            tensors.insert(
                format!("component.{k}.variances"),
                Tensor::from_slice(&c.variances, c.variances.len(), &Device::Cpu)?,
            );
            tensors.insert(format!("component.{k}.basis"), to_tensor(&c.basis)?);
        }
        let params = safetensors::serialize(&tensors, None)
            .map_err(|e| Error::format(&dir.join(PARAMS_FILE), format!("cannot serialize: {e}")))?;
        write_atomic(&dir.join(PARAMS_FILE), &params)?;
        let spec = SpecFile {
            spec: self.spec.clone(),
            seed: self.seed,
            components: self.mixture.components().len(),
            note: format!("parameters in {PARAMS_FILE}; the exact denoiser is rebuilt from them"),
        };
        let json = serde_json::to_string_pretty(&spec).expect("spec serializes");
        write_atomic(&dir.join(SPEC_FILE), json.as_bytes())
    }
}

impl Synthetic {
    /// The distribution saved in `dir`, regenerated from its spec and seed
    /// (so it can draw fresh rows: use indices past the saved data set's).
    pub fn load(dir: &Path) -> Result<Self> {
        let spec = read_spec(dir)?;
        // The saved parameters bound what the spec may claim (a corrupt spec
        // must not make the rebuild allocate or compute without end).
        let saved = load_distribution(dir)?;
        let dims: Vec<usize> = saved.components().iter().map(|c| c.mean.len()).collect();
        if dims.iter().any(|&d| d != spec.spec.ambient()) {
            return Err(Error::format(
                &dir.join(SPEC_FILE),
                format!(
                    "claims ambient dimension {} but {PARAMS_FILE} holds components of dimension {dims:?}",
                    spec.spec.ambient()
                ),
            ));
        }
        Synthetic::new(spec.spec, spec.seed)
    }
}

/// The spec file of the distribution saved in `dir`.
fn read_spec(dir: &Path) -> Result<SpecFile> {
    let path = dir.join(SPEC_FILE);
    serde_json::from_slice(&read(&path)?)
        .map_err(|e| Error::format(&path, format!("not a distribution spec: {e}")))
}

/// Rebuilds a saved distribution's exact mixture from `dir`'s parameter files.
pub fn load_distribution(dir: &Path) -> Result<Mixture> {
    let spec = read_spec(dir)?;
    let params_path = dir.join(PARAMS_FILE);
    let tensors = candle_core::safetensors::load_buffer(&read(&params_path)?, &Device::Cpu)
        .map_err(|e| Error::format(&params_path, format!("not a safetensors file: {e}")))?;
    let get = |name: String| -> Result<Tensor> {
        let t = tensors
            .get(&name)
            .ok_or_else(|| Error::format(&params_path, format!("missing tensor {name}")))?;
        Ok(t.to_dtype(DType::F64)?)
    };
    let components = (0..spec.components)
        .map(|k| {
            let wf = get(format!("component.{k}.weight_floor"))?.to_vec1::<f64>()?;
            if wf.len() != 2 {
                return Err(Error::format(
                    &params_path,
                    format!("component.{k}.weight_floor must hold 2 values"),
                ));
            }
            Ok(Component {
                weight: wf[0],
                floor: wf[1],
                mean: get(format!("component.{k}.mean"))?.to_vec1::<f64>()?,
                variances: get(format!("component.{k}.variances"))?.to_vec1::<f64>()?,
                basis: to_mat(&get(format!("component.{k}.basis"))?)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Mixture::new(components)
}
