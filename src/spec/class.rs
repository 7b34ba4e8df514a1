//! The class-conditional forms of the denoisers a spec names (THEORY §10).

use std::path::Path;

use candle_core::{DType, Device};

use super::{training_rows, DenoiserSpec};
use crate::data::{check_label_count, load_distribution, read_labels};
use crate::denoise::conditional::{component_alone, rows_of_class};
use crate::denoise::{Denoiser, EmpiricalDenoiser};
use crate::nn::checkpoint::{load_model, Weights};
use crate::nn::ClassModel;
use crate::{Error, Result};

/// The class-conditional denoiser `spec` names: the empirical denoiser of
/// the training points labelled `class` (labels from `labels_file`, one per
/// training row), the true denoiser's component `class`, or a
/// class-conditional network given `class` (its labels are in its run).
pub fn class_denoiser(
    spec: &DenoiserSpec,
    dtype: DType,
    labels_file: Option<&Path>,
    class: u32,
) -> Result<Box<dyn Denoiser>> {
    match spec.kind().name {
        "empirical" => {
            let labels_file = labels_file.ok_or_else(|| {
                Error::invalid(
                    "--labels",
                    "missing",
                    "the empirical denoiser of a class needs the training labels",
                )
            })?;
            let train = training_rows(spec.path())?.to_dtype(dtype)?;
            let labels = read_labels(labels_file)?;
            check_label_count(&labels, train.dim(0)?, labels_file)?;
            Ok(Box::new(EmpiricalDenoiser::new(&rows_of_class(
                &train, &labels, class,
            )?)?))
        }
        "truth" => Ok(Box::new(component_alone(
            &load_distribution(spec.path())?,
            class as usize,
        )?)),
        "model" | "model-raw" => {
            let weights = match spec.kind().name {
                "model" => Weights::Ema,
                _ => Weights::Model,
            };
            let model = load_model(spec.path(), weights, &Device::Cpu)?;
            Ok(Box::new(ClassModel::new(model, class)?))
        }
        other => Err(Error::invalid(
            "denoiser",
            other,
            "a class-conditional denoiser exists for empirical, truth and class-conditional models",
        )),
    }
}
