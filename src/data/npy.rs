//! numpy `.npy` files (format versions 1-3, little-endian, C order).
//!
//! Reading gives a tensor of the file's own dtype (u8, f32 or f64); anything
//! else, a Fortran-ordered array, a truncated file or a non-finite value is an
//! error naming the file.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::io::{read, write_atomic};
use crate::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads an `.npy` file into a CPU tensor of its own dtype.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    parse_npy(&read(path)?, path)
}

/// A float array of rows [B, n], or of images [B, C, H, W] flattened to
/// rows, from an .npy file, in its own dtype.
pub fn read_rows(path: &Path) -> Result<Tensor> {
    let t = read_npy(path)?;
    if !matches!(t.rank(), 2 | 4) || t.dtype() == DType::U8 {
        return Err(Error::format(
            path,
            format!(
                "expected a 2-D float array of rows [B, n] or a 4-D one of images [B, C, H, W], got {:?} of shape {:?}",
                t.dtype(),
                t.dims()
            ),
        ));
    }
    Ok(t.flatten_from(1)?)
}

/// Parses the bytes of an `.npy` file; `path` only names it in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let bad = |m: &str| Error::format(path, format!("not a valid .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("wrong magic number"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("header is truncated"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = header_value(header, "descr").ok_or_else(|| bad("header has no 'descr'"))?;
    let fortran = header_value(header, "fortran_order").ok_or_else(|| bad("no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        return Err(Error::format(
            path,
            "Fortran-ordered arrays are not supported; save with C order",
        ));
    }
    let shape = parse_shape(header).ok_or_else(|| bad("header has no readable 'shape'"))?;
    let dtype = match descr.trim().trim_matches('\'') {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "|u1" | "<u1" => DType::U8,
        // Integers (labels): int64 as numpy saves them, int32 widened.
        "<i8" | "<i4" => DType::I64,
        other => {
            return Err(Error::format(
                path,
                format!(
                    "unsupported dtype {other}; expected float32, float64, uint8, int32 or int64"
                ),
            ))
        }
    };
    let stored = match descr.trim().trim_matches('\'') {
        "<i4" => 4,
        _ => dtype.size_in_bytes(),
    };
    let data = &bytes[start + header_len..];
    // A corrupt header's shape can overflow the byte count.
    let expected = shape.iter().try_fold(stored, |n, &d| n.checked_mul(d));
    if expected != Some(data.len()) {
        let needs = expected.map_or("more than 2^64".into(), |e| e.to_string());
        return Err(Error::format(
            path,
            format!(
                "data is {} bytes but shape {shape:?} needs {needs}: the file is truncated or corrupt",
                data.len()
            ),
        ));
    }
    let tensor = match dtype {
        DType::F32 => {
            let v: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            check_finite(path, v.iter().map(|&x| x as f64))?;
            Tensor::from_vec(v, shape, &Device::Cpu)?
        }
        DType::F64 => {
            let v: Vec<f64> = data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            check_finite(path, v.iter().copied())?;
            Tensor::from_vec(v, shape, &Device::Cpu)?
        }
        DType::I64 => {
            let v: Vec<i64> = match stored {
                4 => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                    .collect(),
                _ => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            };
            Tensor::from_vec(v, shape, &Device::Cpu)?
        }
        _ => Tensor::from_vec(data.to_vec(), shape, &Device::Cpu)?,
    };
    Ok(tensor)
}

fn check_finite(path: &Path, values: impl Iterator<Item = f64>) -> Result<()> {
    match values.enumerate().find(|(_, x)| !x.is_finite()) {
        Some((i, x)) => Err(Error::format(
            path,
            format!("element {i} is {x}; data must be finite"),
        )),
        None => Ok(()),
    }
}

/// The text after `'key':` up to the next top-level comma.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let end = if rest.trim_start().starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(&rest[..end])
}

fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let text = header_value(header, "shape")?.trim();
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// Encodes a tensor as `.npy` bytes in `dtype` (f32, f64, u8 or i64).
pub fn encode_npy(tensor: &Tensor, dtype: DType) -> Result<Vec<u8>> {
    let descr = match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::U8 => "|u1",
        DType::I64 => "<i8",
        other => {
            return Err(Error::invalid(
                "dtype",
                format!("{other:?}"),
                "use f32, f64, u8 or i64",
            ))
        }
    };
    let shape = tensor.dims();
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out =
        Vec::with_capacity(10 + header.len() + tensor.elem_count() * dtype.size_in_bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    let flat = tensor
        .flatten_all()?
        .to_dtype(dtype)?
        .to_device(&Device::Cpu)?;
    match dtype {
        DType::F32 => flat
            .to_vec1::<f32>()?
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::F64 => flat
            .to_vec1::<f64>()?
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::I64 => flat
            .to_vec1::<i64>()?
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        _ => out.extend(flat.to_vec1::<u8>()?),
    }
    Ok(out)
}

/// Writes a tensor to an `.npy` file atomically. Refuses non-finite values so
/// that no NaN is ever written silently.
pub fn write_npy(path: &Path, tensor: &Tensor, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        let values = tensor
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(
                format!("element {i} of the array for {}", path.display()),
                values[i],
                "refusing to write a non-finite value",
            ));
        }
    }
    write_atomic(path, &encode_npy(tensor, dtype)?)
}
