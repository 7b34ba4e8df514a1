//! Class labels beside a data set (THEORY §10): one non-negative integer per
//! example, from an MNIST IDX1 label file (gzipped or not), an .npy array
//! of integers (or of integral floats), or such an array in an .npz (named
//! `labels`, or the archive's only array).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::idx::gunzip_if_gzipped;
use super::npy::{parse_npy, write_npy};
use super::npz::read_npz;
use crate::io::read;
use crate::{Error, Result};

/// IDX1's header: two zero bytes, unsigned bytes (0x08), one dimension.
const IDX1: [u8; 4] = [0, 0, 0x08, 1];

/// The labels of `path`, one per example.
pub fn read_labels(path: &Path) -> Result<Vec<u32>> {
    let bytes = gunzip_if_gzipped(read(path)?, path)?;
    if bytes.starts_with(&IDX1) {
        let count = bytes
            .get(4..8)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize)
            .ok_or_else(|| Error::format(path, "IDX label header is truncated"))?;
        let data = &bytes[8..];
        if data.len() != count {
            return Err(Error::format(
                path,
                format!("holds {} labels but its header says {count}", data.len()),
            ));
        }
        return Ok(data.iter().map(|&b| u32::from(b)).collect());
    }
    let array = match bytes.starts_with(b"PK\x03\x04") {
        // An .npz: its array `labels`, or its only array.
        true => read_npz(path, Some("labels"))
            .or_else(|named| read_npz(path, None).map_err(|_| named))?,
        false => parse_npy(&bytes, path)?,
    };
    let values = match array.dims() {
        [_] | [_, 1] => array
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?,
        dims => {
            return Err(Error::format(
                path,
                format!("labels must be one integer per example, [N]; got shape {dims:?}"),
            ))
        }
    };
    values
        .iter()
        .enumerate()
        .map(
            |(i, &v)| match v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v) {
                true => Ok(v as u32),
                false => Err(Error::format(
                    path,
                    format!("label {i} is {v}; labels must be non-negative integers"),
                )),
            },
        )
        .collect()
}

/// Labels that name each of `count` examples, or an error naming `path`.
pub fn check_label_count(labels: &[u32], count: usize, path: &Path) -> Result<()> {
    match labels.len() == count {
        true => Ok(()),
        false => Err(Error::format(
            path,
            format!("has {} labels for {count} examples", labels.len()),
        )),
    }
}

/// Writes labels as an int64 .npy array (numpy's default integer).
pub fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let values: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let tensor = Tensor::from_vec(values, labels.len(), &Device::Cpu)?;
    write_npy(path, &tensor, DType::I64)
}
