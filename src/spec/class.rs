//! The class-conditional forms of the denoisers a spec names (THEORY §10).

use std::path::Path;

use candle_core::{DType, Device};

use super::{DenoiserKind, DenoiserSpec, Input};
use crate::data::{check_label_count, read_labels};
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
    let input = spec.input(dtype)?;
    let labels = match labels_file {
        Some(file) => {
            let labels = read_labels(file)?;
            if let Input::Examples(train) = &input {
                check_label_count(&labels, train.dim(0)?, file)?;
            }
            Some(labels)
        }
        None => None,
    };
    class_denoiser_from(spec.kind(), input, labels.as_deref(), class, dtype)
}

/// As [`class_denoiser`], from what the kind is built from in hand and the
/// training labels (one per example) for the empirical kind.
pub fn class_denoiser_from(
    kind: &DenoiserKind,
    input: Input<'_>,
    labels: Option<&[u32]>,
    class: u32,
    dtype: DType,
) -> Result<Box<dyn Denoiser>> {
    match (kind.name, input) {
        ("empirical", Input::Examples(train)) => {
            let labels = labels.ok_or_else(|| {
                Error::invalid(
                    "--labels",
                    "missing",
                    "the empirical denoiser of a class needs the training labels",
                )
            })?;
            let train = train.flatten_from(1)?.to_dtype(dtype)?;
            if labels.len() != train.dim(0)? {
                return Err(Error::shape(
                    "labels: one per training example",
                    train.dim(0)?,
                    labels.len(),
                ));
            }
            Ok(Box::new(EmpiricalDenoiser::new(&rows_of_class(
                &train, labels, class,
            )?)?))
        }
        ("truth", Input::Distribution(mixture)) => {
            Ok(Box::new(component_alone(&mixture, class as usize)?))
        }
        (name @ ("model" | "model-raw"), Input::Run(run)) => {
            let weights = match name {
                "model" => Weights::Ema,
                _ => Weights::Model,
            };
            let model = load_model(run, weights, &Device::Cpu)?;
            Ok(Box::new(ClassModel::new(model, class)?))
        }
        (other, _) => Err(Error::invalid(
            "denoiser",
            other,
            "a class-conditional denoiser exists for empirical, truth and class-conditional models",
        )),
    }
}
